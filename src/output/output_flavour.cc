#include "src/output/output_flavour.h"

#include <fmt/format.h>

#include <charconv>

#include "src/output/img2dataset_flavour.h"

namespace sluice {
namespace {

// output.fields sluice: a directory per kind of output, files named by batch id,
// items keyed by their id.
class SluiceFlavour final : public OutputFlavour {
 public:
  Status CheckBatch(const FinishedBatch& batch) const override {
    (void)batch;  // any batch id and extent can be named
    return Status::Ok();
  }

  OutputName Name(OutputFile file, const FinishedBatch& batch) const override {
    const std::string name = SluiceBatchName(batch.id);
    switch (file) {
      case OutputFile::kImages:
        return {"images", name};
      case OutputFile::kShard:
        return {"shards", name + ".tar"};
      case OutputFile::kMetadata:
        return {"metadata", name + ".jsonl"};
      case OutputFile::kStats:
        return {"stats", name + ".json"};
    }
    return {"", name};
  }

  std::vector<std::string> Dirs() const override {
    return {"images", "shards", "metadata", "stats"};
  }

  std::string ItemKey(const FinishedBatch& batch, ItemId item) const override {
    (void)batch;  // the id alone is unique
    return SluiceItemKey(item);
  }

  std::optional<ItemId> ItemOfKey(const FinishedBatch& batch,
                                  std::string_view key) const override {
    (void)batch;
    ItemId id = 0;
    auto [end, error] = std::from_chars(key.data(), key.data() + key.size(), id);
    if (key.empty() || error != std::errc() || end != key.data() + key.size()) {
      return std::nullopt;
    }
    return id;
  }

  std::string ItemJson(const FinishedBatch& batch, const Record& record) const override {
    (void)batch;
    return ItemMetadataJson(record);
  }

  std::optional<ItemId> ItemOfJson(const FinishedBatch& batch,
                                   std::string_view json) const override {
    (void)batch;
    return MetadataItemId(json);
  }

  std::unique_ptr<BatchStats> NewStats() const override {
    return std::make_unique<SluiceBatchStats>();
  }
};

}  // namespace

std::string SluiceBatchName(BatchId batch) { return fmt::format("{:08}", batch); }

std::string SluiceItemKey(ItemId item) { return fmt::format("{:010}", item); }

std::unique_ptr<OutputFlavour> MakeOutputFlavour(const OutputConfig& config,
                                                 std::uint32_t batch_size) {
  switch (config.fields) {
    case OutputFields::kSluice:
      return std::make_unique<SluiceFlavour>();
    case OutputFields::kImg2Dataset:
      return std::make_unique<Img2DatasetFlavour>(config.shard_digits, batch_size);
  }
  return std::make_unique<SluiceFlavour>();
}

}  // namespace sluice
