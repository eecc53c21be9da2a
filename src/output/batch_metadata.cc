#include "src/output/batch_metadata.h"

#include <algorithm>
#include <string_view>
#include <variant>

#include "src/core/result_json.h"

namespace sluice {

std::string ItemMetadataJson(const Record& record) {
  OrderedJson object = {{"id", record.id()},
                        {"url", record.url()},
                        {"status", record.reason() == FailureReason::kFiltered
                                       ? "filtered"
                                       : (record.failed() ? "failed" : "ok")},
                        {"reason", FailureReasonName(record.reason())},
                        {"error", record.error()}};
  AddResultFields(record, object, /*prefix_fixed_keys=*/true);
  if (!record.columns().empty()) {
    OrderedJson input = OrderedJson::object();
    for (const auto& [name, text] : record.columns()) input[name] = text;
    object["input"] = std::move(input);
  }
  return DumpJson(object);
}

std::optional<ItemId> MetadataItemId(std::string_view json) {
  const OrderedJson object =
      OrderedJson::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object() || !object.contains("id") ||
      !object["id"].is_number_unsigned()) {
    return std::nullopt;
  }
  return object["id"].get<ItemId>();
}

void SluiceBatchStats::CountItem(ItemId id, std::string_view reason) {
  first_id_ = items_ == 0 ? id : std::min(first_id_, id);
  last_id_ = items_ == 0 ? id : std::max(last_id_, id);
  ++items_;
  if (reason.empty()) {
    ++ok_;
  } else if (reason == FailureReasonName(FailureReason::kFiltered)) {
    ++filtered_;
  } else {
    ++failures_[std::string(reason)];
  }
}

void SluiceBatchStats::CountTiming(const std::string& name, double value) {
  Timing& timing = timings_[name];
  timing.min = timing.count == 0 ? value : std::min(timing.min, value);
  timing.max = timing.count == 0 ? value : std::max(timing.max, value);
  timing.total += value;
  ++timing.count;
}

void SluiceBatchStats::Add(const Record& record) {
  CountItem(record.id(), FailureReasonName(record.reason()));
  for (const auto& [name, value] : record.fields()) {
    if (!std::string_view(name).ends_with("_ms")) continue;
    if (const auto* i = std::get_if<std::int64_t>(&value)) {
      CountTiming(name, static_cast<double>(*i));
    } else if (const auto* d = std::get_if<double>(&value)) {
      CountTiming(name, *d);
    }
  }
}

bool SluiceBatchStats::AddMetadata(std::string_view json) {
  const OrderedJson object =
      OrderedJson::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object() || !object.contains("id") ||
      !object["id"].is_number_unsigned()) {
    return false;
  }
  const auto reason = object.find("reason");
  CountItem(object["id"].get<ItemId>(), reason != object.end() && reason->is_string()
                                            ? reason->get_ref<const std::string&>()
                                            : std::string());
  for (const auto& [name, value] : object.items()) {
    if (std::string_view(name).ends_with("_ms") && value.is_number()) {
      CountTiming(name, value.get<double>());
    }
  }
  return true;
}

std::string SluiceBatchStats::ToJson(const FinishedBatch& batch) const {
  OrderedJson failures = OrderedJson::object();
  for (const auto& [reason, count] : failures_) failures[reason] = count;
  OrderedJson timings = OrderedJson::object();
  for (const auto& [name, timing] : timings_) {
    timings[name] = {{"count", timing.count},
                     {"total", timing.total},
                     {"min", timing.min},
                     {"max", timing.max},
                     {"mean", timing.total / static_cast<double>(timing.count)}};
  }
  OrderedJson object = {{"batch", batch.id},
                        {"first_id", first_id_},
                        {"last_id", last_id_},
                        {"items", items_},
                        {"ok", ok_},
                        {"failed", items_ - ok_ - filtered_},
                        {"filtered", filtered_},
                        {"failures", std::move(failures)},
                        {"bytes_written", bytes_written_},
                        {"timings", std::move(timings)}};
  return DumpJson(object, 2) + "\n";
}

}  // namespace sluice
