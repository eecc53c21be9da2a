#include "src/output/img2dataset_flavour.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>
#include <variant>

namespace sluice {
namespace {

using OrderedJson = nlohmann::ordered_json;

// The columns an item's JSON object always has; input columns of these names are
// left out.
const std::set<std::string, std::less<>> kFixedColumns = {
    "url",   "key",    "status",         "error_message",
    "width", "height", "original_width", "original_height",
    "exif",  "sha256"};

std::string Dump(const OrderedJson& json, int indent = -1) {
  // Replace rather than throw on invalid UTF-8 produced by a stage or an input.
  return json.dump(indent, ' ', false, OrderedJson::error_handler_t::replace);
}

OrderedJson IntOrNull(const Record& record, std::string_view name) {
  const Value* value = record.Find(name);
  const auto* number = value == nullptr ? nullptr : std::get_if<std::int64_t>(value);
  return number == nullptr ? OrderedJson(nullptr) : OrderedJson(*number);
}

OrderedJson StringOrNull(const Record& record, std::string_view name) {
  const Value* value = record.Find(name);
  const auto* text = value == nullptr ? nullptr : std::get_if<std::string>(value);
  return text == nullptr ? OrderedJson(nullptr) : OrderedJson(*text);
}

// error_message: the item's error, or its reason's name when it has no text.
std::string ErrorMessage(const Record& record) {
  return record.error().empty() ? std::string(FailureReasonName(record.reason()))
                                : record.error();
}

// Microseconds since the epoch: exact in a double, unlike the clock's nanoseconds.
std::int64_t UnixMicros(std::chrono::system_clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch())
      .count();
}

double Seconds(std::int64_t micros) { return static_cast<double>(micros) / 1e6; }

std::optional<Img2DatasetStatus> ParseStatus(std::string_view name) {
  for (Img2DatasetStatus status :
       {Img2DatasetStatus::kSuccess, Img2DatasetStatus::kFailedToDownload,
        Img2DatasetStatus::kFailedToResize}) {
    if (Img2DatasetStatusName(status) == name) return status;
  }
  return std::nullopt;
}

}  // namespace

int SampleDigits(std::uint32_t batch_size) {
  int digits = 0;
  for (std::uint64_t power = 1; power < batch_size; power *= 10) ++digits;
  return digits;
}

std::string_view Img2DatasetStatusName(Img2DatasetStatus status) {
  switch (status) {
    case Img2DatasetStatus::kSuccess:
      return "success";
    case Img2DatasetStatus::kFailedToDownload:
      return "failed_to_download";
    case Img2DatasetStatus::kFailedToResize:
      return "failed_to_resize";
  }
  return "failed_to_download";
}

Img2DatasetStatus Img2DatasetStatusOf(const Record& record) {
  const bool downloaded =
      record.Find("http_status") != nullptr || record.Find("format") != nullptr;
  const Img2DatasetStatus where_it_arose = downloaded
                                               ? Img2DatasetStatus::kFailedToResize
                                               : Img2DatasetStatus::kFailedToDownload;
  // Every reason by name, no default: a new reason must be placed here.
  switch (record.reason()) {
    case FailureReason::kNone:
      return Img2DatasetStatus::kSuccess;
    case FailureReason::kInvalidUrl:
    case FailureReason::kForbidden:  // a safety rule: scheme, private address (SSRF)
    case FailureReason::kDns:
    case FailureReason::kConnect:
    case FailureReason::kTimeout:
    case FailureReason::kHttp4xx:
    case FailureReason::kHttp5xx:
    case FailureReason::kTooManyRedirects:
    case FailureReason::kOptOut:        // X-Robots-Tag directives
    case FailureReason::kHashMismatch:  // the downloaded bytes are not the expected
      return Img2DatasetStatus::kFailedToDownload;
    case FailureReason::kDecode:
    case FailureReason::kTooSmall:
    case FailureReason::kAspectRatio:
      return Img2DatasetStatus::kFailedToResize;
    case FailureReason::kTooLarge:  // fetch: body over max_bytes; decode, resize: pixels
    case FailureReason::kNotImage:  // fetch: Content-Type; decode: no image format
    case FailureReason::kInjected:  // the fail stage, wherever it stands
    case FailureReason::kStage:     // any stage's own error
    case FailureReason::kInternal:
    case FailureReason::kFiltered:  // a filter stage (img2dataset has no such status)
      return where_it_arose;
  }
  return where_it_arose;
}

Img2DatasetFlavour::Img2DatasetFlavour(int shard_digits, std::uint32_t batch_size)
    : shard_digits_(shard_digits),
      sample_digits_(SampleDigits(batch_size)),
      per_shard_([this] {
        std::uint64_t power = 1;
        for (int i = 0; i < sample_digits_; ++i) power *= 10;
        return power;
      }()) {}

Status Img2DatasetFlavour::CheckBatch(const FinishedBatch& batch) const {
  if (batch.id == 0) {
    return Internal("output: batch id 0 has no img2dataset shard (ids start at 1)");
  }
  if (batch.item_count > per_shard_) {
    return InvalidArgument(fmt::format(
        "output: batch {} has {} items, more than the {} keys per shard its batch "
        "size gives (fields img2dataset)",
        batch.id, batch.item_count, per_shard_));
  }
  return Status::Ok();
}

std::string Img2DatasetFlavour::ShardName(const FinishedBatch& batch) const {
  return fmt::format("{:0{}}", batch.id - 1, shard_digits_);
}

OutputName Img2DatasetFlavour::Name(OutputFile file, const FinishedBatch& batch) const {
  const std::string shard = ShardName(batch);
  switch (file) {
    case OutputFile::kImages:
      return {"", shard};
    case OutputFile::kShard:
      return {"", shard + ".tar"};
    case OutputFile::kMetadata:
      return {"", shard + ".jsonl"};
    case OutputFile::kStats:
      return {"", shard + "_stats.json"};
  }
  return {"", shard};
}

std::string Img2DatasetFlavour::ItemKey(const FinishedBatch& batch, ItemId item) const {
  const std::uint64_t key = (batch.id - 1) * per_shard_ + (item - batch.first_item);
  return fmt::format("{:0{}}", key, shard_digits_ + sample_digits_);
}

std::optional<ItemId> Img2DatasetFlavour::ItemOfKey(const FinishedBatch& batch,
                                                    std::string_view key) const {
  std::uint64_t value = 0;
  auto [end, error] = std::from_chars(key.data(), key.data() + key.size(), value);
  if (key.empty() || error != std::errc() || end != key.data() + key.size()) {
    return std::nullopt;
  }
  if (value / per_shard_ != batch.id - 1) return std::nullopt;
  const std::uint64_t index = value % per_shard_;
  if (index >= batch.item_count) return std::nullopt;
  return batch.first_item + index;
}

std::string Img2DatasetFlavour::ItemJson(const FinishedBatch& batch,
                                         const Record& record) const {
  OrderedJson object = OrderedJson::object();
  object["url"] = record.url();
  for (const auto& [name, text] : record.columns()) {
    if (!kFixedColumns.contains(name)) object[name] = text;
  }
  object["key"] = ItemKey(batch, record.id());
  object["status"] = Img2DatasetStatusName(Img2DatasetStatusOf(record));
  object["error_message"] =
      record.failed() ? OrderedJson(ErrorMessage(record)) : OrderedJson(nullptr);
  OrderedJson width = nullptr;
  OrderedJson height = nullptr;
  if (!record.failed()) {
    const bool resized = record.Find("resized_width") != nullptr;
    width = IntOrNull(record, resized ? "resized_width" : "width");
    height = IntOrNull(record, resized ? "resized_height" : "height");
  }
  object["width"] = std::move(width);
  object["height"] = std::move(height);
  object["original_width"] = IntOrNull(record, "width");
  object["original_height"] = IntOrNull(record, "height");
  object["exif"] = StringOrNull(record, "exif");
  object["sha256"] = StringOrNull(record, "sha256");
  return Dump(object);
}

std::optional<ItemId> Img2DatasetFlavour::ItemOfJson(const FinishedBatch& batch,
                                                     std::string_view json) const {
  const OrderedJson object =
      OrderedJson::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object()) return std::nullopt;
  const auto key = object.find("key");
  if (key == object.end() || !key->is_string()) return std::nullopt;
  return ItemOfKey(batch, key->get_ref<const std::string&>());
}

std::unique_ptr<BatchStats> Img2DatasetFlavour::NewStats() const {
  return std::make_unique<Img2DatasetStats>();
}

void Img2DatasetStats::Count(Img2DatasetStatus status, const std::string& message) {
  ++count_;
  switch (status) {
    case Img2DatasetStatus::kSuccess:
      ++successes_;
      ++messages_["success"];
      return;
    case Img2DatasetStatus::kFailedToDownload:
      ++failed_to_download_;
      break;
    case Img2DatasetStatus::kFailedToResize:
      ++failed_to_resize_;
      break;
  }
  ++messages_[message];
}

void Img2DatasetStats::Add(const Record& record) {
  Count(Img2DatasetStatusOf(record), record.failed() ? ErrorMessage(record) : "");
}

bool Img2DatasetStats::AddMetadata(std::string_view json) {
  const OrderedJson object =
      OrderedJson::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object()) return false;
  const auto status_field = object.find("status");
  if (status_field == object.end() || !status_field->is_string()) return false;
  const std::optional<Img2DatasetStatus> status =
      ParseStatus(status_field->get_ref<const std::string&>());
  if (!status.has_value()) return false;
  const auto message = object.find("error_message");
  Count(*status, message != object.end() && message->is_string()
                     ? message->get_ref<const std::string&>()
                     : std::string(Img2DatasetStatusName(*status)));
  return true;
}

void Img2DatasetStats::AddBytesWritten(std::uint64_t bytes) {
  (void)bytes;  // img2dataset's stats have no such count
}

std::string Img2DatasetStats::ToJson(const FinishedBatch& batch) const {
  // The most frequent messages first (ties by message), the rest summed.
  std::vector<std::pair<std::string, std::uint64_t>> messages(messages_.begin(),
                                                              messages_.end());
  std::stable_sort(messages.begin(), messages.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  OrderedJson status_dict = OrderedJson::object();
  std::uint64_t other = 0;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (i < kStatusDictEntries) {
      status_dict[messages[i].first] = messages[i].second;
    } else {
      other += messages[i].second;
    }
  }
  if (other > 0) {
    status_dict["other"] = status_dict.value("other", std::uint64_t{0}) + other;
  }
  const std::int64_t start = UnixMicros(batch.started);
  const std::int64_t end = UnixMicros(batch.finished);
  OrderedJson object = {{"count", count_},
                        {"successes", successes_},
                        {"failed_to_download", failed_to_download_},
                        {"failed_to_resize", failed_to_resize_},
                        {"duration", Seconds(std::max<std::int64_t>(0, end - start))},
                        {"start_time", Seconds(start)},
                        {"end_time", Seconds(end)},
                        {"status_dict", std::move(status_dict)}};
  return Dump(object, 4) + "\n";
}

}  // namespace sluice
