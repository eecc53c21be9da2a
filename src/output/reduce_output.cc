#include "src/output/reduce_output.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "src/core/reduce_part.h"
#include "src/core/result_json.h"
#include "src/output/output_flavour.h"
#include "src/output/staged_files.h"

namespace sluice {
namespace fs = std::filesystem;
namespace {

// The contents of `path`; NotFound when it is missing.
Result<std::string> ReadWholeFile(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    const int error = errno;
    if (error == ENOENT) return NotFound(fmt::format("{}: no such file", path.string()));
    return IoError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(error)));
  }
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) return IoError(fmt::format("{}: cannot read", path.string()));
  return text.str();
}

Result<nlohmann::json> ReadJsonFile(const fs::path& path) {
  Result<std::string> text = ReadWholeFile(path);
  if (!text.ok()) return text.status();
  nlohmann::json json = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return Corruption(fmt::format("{}: not JSON (cut short, or not written by sluice)",
                                  path.string()));
  }
  return json;
}

// The batch a part's file name ("00000042.json") is of; nullopt for other names.
std::optional<BatchId> BatchOfPartName(const std::string& name) {
  if (name.size() < 6 || !name.ends_with(".json")) return std::nullopt;
  const std::string digits = name.substr(0, name.size() - 5);
  if (digits.size() > 19 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return static_cast<BatchId>(std::stoull(digits));
}

// Writes `result` to `path` with "complete" and "batches" in front, atomically.
Status WriteResultFile(const fs::path& path, OrderedJson result, bool complete,
                       std::size_t batches) {
  OrderedJson file;
  file["reduce"] = result["reduce"];
  file["complete"] = complete;
  file["batches"] = batches;
  file.update(result);
  // One line per key, and per group: readable as it is, and by line tools.
  std::string text = "{";
  bool first = true;
  for (const auto& [key, value] : file.items()) {
    text += first ? "\n  " : ",\n  ";
    first = false;
    text += DumpJson(OrderedJson(key)) + ": ";
    if (key == "groups" && !value.empty()) {
      text += "[";
      for (std::size_t i = 0; i < value.size(); ++i) {
        text += (i == 0 ? "\n    " : ",\n    ") + DumpJson(value[i]);
      }
      text += "\n  ]";
    } else {
      text += DumpJson(value);
    }
  }
  text += "\n}\n";
  StagedFiles staged;
  SLUICE_RETURN_IF_ERROR(staged.AddFile(path.parent_path(), path.filename().string(), text));
  return staged.Publish();
}

}  // namespace

// The inner output's staged batch, and the parts' files.
class ReduceOutput::Staged final : public StagedBatch {
 public:
  Staged(ReduceOutput* owner, BatchId batch, std::unique_ptr<StagedBatch> inner)
      : owner_(owner), batch_(batch), inner_(std::move(inner)) {}

  StagedFiles& files() { return files_; }
  std::vector<ReduceTable>& tables() { return tables_; }

  Status Publish() override {
    if (inner_ != nullptr) SLUICE_RETURN_IF_ERROR(inner_->Publish());
    SLUICE_RETURN_IF_ERROR(files_.Publish());
    if (!published_) {
      published_ = true;
      owner_->Committed(batch_, std::move(tables_));
    }
    return Status::Ok();
  }

 private:
  ReduceOutput* const owner_;
  const BatchId batch_;
  const std::unique_ptr<StagedBatch> inner_;
  StagedFiles files_;
  std::vector<ReduceTable> tables_;  // one per reducer, for the views
  bool published_ = false;
};

ReduceOutput::ReduceOutput(std::vector<std::shared_ptr<const ReduceSpec>> reducers,
                           fs::path root, BatchOutput* inner)
    : reducers_(std::move(reducers)), root_(std::move(root)), inner_(inner) {
  for (const auto& spec : reducers_) {
    views_.push_back(View{spec, ReduceTable(spec), Clock::now()});
  }
}

fs::path ReduceOutput::PartsDir(const ReduceSpec& spec) const {
  return root_ / "reduce" / spec.name;
}

fs::path ReduceOutput::ResultPath(const ReduceSpec& spec) const {
  return root_ / "reduce" / (spec.name + ".json");
}

Status ReduceOutput::Prepare() {
  for (const auto& spec : reducers_) {
    std::error_code error;
    fs::create_directories(PartsDir(*spec), error);
    if (error) {
      return IoError(fmt::format("{}: cannot create: {}", PartsDir(*spec).string(),
                                 error.message()));
    }
    for (const fs::path& dir : {PartsDir(*spec), PartsDir(*spec).parent_path()}) {
      Result<LeftoverCount> removed = RemoveLeftovers(dir);
      if (!removed.ok()) return removed.status();
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<ReduceBatchPart>> ReduceOutput::EarlierPart(const ReduceSpec& spec,
                                                                   BatchId batch) const {
  const fs::path path = PartsDir(spec) / (SluiceBatchName(batch) + ".json");
  Result<nlohmann::json> json = ReadJsonFile(path);
  if (!json.ok()) {
    return json.status().WithContext(fmt::format(
        "reduce {}: batch {} is redone in part, and the part its earlier attempt "
        "committed cannot be read, without which the items not redone would not be "
        "counted",
        spec.name, batch));
  }
  std::shared_ptr<const ReduceSpec> shared;
  for (const auto& candidate : reducers_) {
    if (candidate.get() == &spec) shared = candidate;
  }
  Result<ReduceBatchPart> part = ReduceBatchPart::FromJson(shared, *json, path.string());
  if (!part.ok()) return part.status();
  return std::make_unique<ReduceBatchPart>(std::move(part).value());
}

Result<std::unique_ptr<StagedBatch>> ReduceOutput::StageBatch(
    const FinishedBatch& batch, std::span<const Record> records) {
  std::unique_ptr<StagedBatch> inner;
  if (inner_ != nullptr) {
    Result<std::unique_ptr<StagedBatch>> staged = inner_->StageBatch(batch, records);
    if (!staged.ok()) return staged.status();
    inner = std::move(staged).value();
  }
  auto staged = std::make_unique<Staged>(this, batch.id, std::move(inner));
  const bool in_part = records.size() < batch.item_count;
  for (const auto& spec : reducers_) {
    std::unique_ptr<ReduceBatchPart> earlier;
    if (in_part) {
      Result<std::unique_ptr<ReduceBatchPart>> read = EarlierPart(*spec, batch.id);
      if (!read.ok()) return read.status();
      earlier = std::move(read).value();
    }
    Result<ReduceBatchPart> part =
        ReduceBatchPart::Make(spec, batch.item_count, records, earlier.get());
    if (!part.ok()) return part.status().WithContext(fmt::format("batch {}", batch.id));
    OrderedJson json;
    json["batch"] = batch.id;
    json["items"] = part->items();
    json.update(part->ToJson());
    SLUICE_RETURN_IF_ERROR(staged->files().AddFile(
        PartsDir(*spec), SluiceBatchName(batch.id) + ".json", DumpJson(json) + "\n"));
    staged->tables().push_back(part->Table());
  }
  // Publish() inside the commit only renames.
  SLUICE_RETURN_IF_ERROR(staged->files().Sync());
  bool due = false;
  {
    std::lock_guard lock(mutex_);
    for (const View& view : views_) {
      due |= view.spec->emit_every.count() > 0 &&
             Clock::now() - view.last_emit >= view.spec->emit_every;
    }
  }
  if (due) SLUICE_RETURN_IF_ERROR(WriteViews());
  return std::unique_ptr<StagedBatch>(std::move(staged));
}

void ReduceOutput::Committed(BatchId batch, std::vector<ReduceTable> tables) {
  std::lock_guard lock(mutex_);
  // A batch published twice (its first commit's outcome was unknown, or the
  // lease was lost after the renames) is in the views once.
  if (!viewed_.insert(batch).second) return;
  for (std::size_t i = 0; i < views_.size() && i < tables.size(); ++i) {
    views_[i].table.Merge(tables[i]);
  }
}

Status ReduceOutput::WriteViews() {
  std::vector<std::pair<fs::path, OrderedJson>> files;
  std::size_t batches = 0;
  {
    std::lock_guard lock(mutex_);
    batches = viewed_.size();
    for (View& view : views_) {
      view.last_emit = Clock::now();
      files.emplace_back(ResultPath(*view.spec), view.table.ResultJson());
    }
  }
  for (auto& [path, json] : files) {
    SLUICE_RETURN_IF_ERROR(WriteResultFile(path, std::move(json), false, batches));
  }
  return Status::Ok();
}

Status ReduceOutput::WriteResults() {
  for (const auto& spec : reducers_) {
    const fs::path dir = PartsDir(*spec);
    std::vector<std::pair<BatchId, fs::path>> parts;
    std::error_code error;
    for (fs::directory_iterator it(dir, error), end; !error && it != end;
         it.increment(error)) {
      const std::string name = it->path().filename().string();
      if (IsLeftoverName(name)) continue;
      if (std::optional<BatchId> batch = BatchOfPartName(name)) {
        parts.emplace_back(*batch, it->path());
      }
    }
    if (error) {
      return IoError(fmt::format("{}: cannot list: {}", dir.string(), error.message()));
    }
    std::sort(parts.begin(), parts.end());
    ReduceTable table(spec);
    for (const auto& [batch, path] : parts) {
      Result<nlohmann::json> json = ReadJsonFile(path);
      if (!json.ok()) return json.status().WithContext("reduce " + spec->name);
      Result<ReduceBatchPart> part = ReduceBatchPart::FromJson(spec, *json, path.string());
      if (!part.ok()) return part.status().WithContext("reduce " + spec->name);
      table.Merge(part->Table());
    }
    SLUICE_RETURN_IF_ERROR(
        WriteResultFile(ResultPath(*spec), table.ResultJson(), true, parts.size()));
  }
  return Status::Ok();
}

std::uint64_t ReduceOutput::Hold(BatchId batch, std::span<Record> records) {
  if (inner_ != nullptr) return inner_->Hold(batch, records);
  // Results only: a reduce reads no bytes.
  for (Record& record : records) record.EraseInFlightData();
  return 0;
}

Status ReduceOutput::Spill(BatchId batch, std::span<Record> records) {
  return inner_ != nullptr ? inner_->Spill(batch, records) : Status::Ok();
}

void ReduceOutput::Discard(BatchId batch) {
  if (inner_ != nullptr) inner_->Discard(batch);
}

}  // namespace sluice
