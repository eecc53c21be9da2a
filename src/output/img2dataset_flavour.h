// output.fields img2dataset: img2dataset's file names, keys, columns and stats, so
// that readers of img2dataset's output (webdataset loaders, its stats summaries,
// scripts over its metadata) read sluice's unchanged.
//
// Shards and keys. Batch B is shard S = B - 1 (store batch ids start at 1,
// img2dataset's shards at 0), named SSSSS: S zero-padded to `shard_digits` digits
// (img2dataset's oom_shard_count). Item I of the batch is at index
// i = I - first_item, and its key is
//
//   KEY = S * 10^s + i, zero-padded to shard_digits + s digits,
//
// with s = SampleDigits(batch_size), the least s such that 10^s >= batch_size
// (img2dataset's oom_sample_per_shard, ceil(log10(number_sample_per_shard))). For
// shard 3, index 17, batch_size 10000 and 5 shard digits: "000030017". A shard
// number over shard_digits digits makes longer names (still unique).
//
// Files, in the output root: SSSSS.tar (layout webdataset: KEY.EXT, KEY.json and
// KEY.txt per ok item, by key), or SSSSS/KEY.EXT, SSSSS/KEY.json, SSSSS/KEY.txt
// (layout files); SSSSS.jsonl: one JSON line per item, ok and failed, by key
// (img2dataset writes SSSSS.parquet: same columns, as JSON lines); SSSSS_stats.json.
//
// An item's JSON object (its metadata line and KEY.json), columns in this order:
//   {"url": ..., <the other input columns, as ingested>, "key": "000030017",
//    "status": "success" | "failed_to_download" | "failed_to_resize",
//    "error_message": null | "...", "width": 256, "height": 256,
//    "original_width": 640, "original_height": 480, "exif": null | "{...}",
//    "sha256": null | "<hex>"}
// width/height are the saved image's size (resize's resized_width/resized_height,
// else decode's width/height), null for a failed item; original_* the source's
// (decode's width/height), null when unknown; exif decode's "exif" field (with
// extract_exif: the EXIF tags as JSON text, written as a string as img2dataset
// writes it, also for an item that failed after decode read it), else null;
// sha256 the sha256 stage's digest, if it ran. An input column named like one of
// the fixed columns is left out (the fixed column says it). error_message is the
// item's error, or its reason's name when it has no text.
//
// Stats, SSSSS_stats.json:
//   {"count": 10000, "successes": 9000, "failed_to_download": 900,
//    "failed_to_resize": 100, "duration": 61.5, "start_time": 1700000000.25,
//    "end_time": 1700000061.75, "status_dict": {"success": 9000, "<error>": 3, ...}}
// start_time and end_time (unix seconds) are the attempt's: when its items were
// handed to the stages and when its last record came out (FinishedBatch), so
// after a partial redo they time the redo alone, while the counts cover the whole
// batch (carried-over items are counted from their metadata). status_dict counts
// error messages and "success", as img2dataset's does, capped at the
// kStatusDictEntries most frequent; the rest are summed in "other".
#ifndef SLUICE_OUTPUT_IMG2DATASET_FLAVOUR_H_
#define SLUICE_OUTPUT_IMG2DATASET_FLAVOUR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/output/output_flavour.h"

namespace sluice {

// img2dataset's oom_sample_per_shard for `batch_size` items per shard: the least s
// with 10^s >= batch_size (1000 -> 3, 1001 -> 4, 10000 -> 4, 1 -> 0).
int SampleDigits(std::uint32_t batch_size);

// An item's img2dataset status.
enum class Img2DatasetStatus : std::uint8_t {
  kSuccess,           // "success"
  kFailedToDownload,  // "failed_to_download": it failed before an image was decoded
  kFailedToResize,    // "failed_to_resize": decode, resize, encode or a size rule
};

std::string_view Img2DatasetStatusName(Img2DatasetStatus status);

// The status of `record`, from its failure reason. Where a reason can arise on
// either side of the download (too_large, not_image, and the generic stage,
// injected and internal), it is failed_to_resize once the download is done: the
// record has fetch's "http_status" or decode's "format".
Img2DatasetStatus Img2DatasetStatusOf(const Record& record);

// How many messages status_dict keeps apart; the rest are summed in "other".
inline constexpr std::size_t kStatusDictEntries = 100;

class Img2DatasetFlavour final : public OutputFlavour {
 public:
  // REQUIRES: 1 <= shard_digits <= 12 (output.shard_digits), batch_size >= 1.
  Img2DatasetFlavour(int shard_digits, std::uint32_t batch_size);

  Status CheckBatch(const FinishedBatch& batch) const override;
  OutputName Name(OutputFile file, const FinishedBatch& batch) const override;
  std::vector<std::string> Dirs() const override { return {""}; }
  std::string ItemKey(const FinishedBatch& batch, ItemId item) const override;
  std::optional<ItemId> ItemOfKey(const FinishedBatch& batch,
                                  std::string_view key) const override;
  std::string ItemJson(const FinishedBatch& batch, const Record& record) const override;
  std::optional<ItemId> ItemOfJson(const FinishedBatch& batch,
                                   std::string_view json) const override;
  std::unique_ptr<BatchStats> NewStats() const override;

  // SSSSS of `batch`.
  std::string ShardName(const FinishedBatch& batch) const;

 private:
  const int shard_digits_;
  const int sample_digits_;        // SampleDigits(batch_size)
  const std::uint64_t per_shard_;  // 10^sample_digits_
};

class Img2DatasetStats final : public BatchStats {
 public:
  void Add(const Record& record) override;
  bool AddMetadata(std::string_view json) override;
  void AddBytesWritten(std::uint64_t bytes) override;  // not in img2dataset's stats
  std::string ToJson(const FinishedBatch& batch) const override;

 private:
  void Count(Img2DatasetStatus status, const std::string& message);

  std::uint64_t count_ = 0;
  std::uint64_t successes_ = 0;
  std::uint64_t failed_to_download_ = 0;
  std::uint64_t failed_to_resize_ = 0;
  std::map<std::string, std::uint64_t> messages_;  // status_dict before the cap
};

}  // namespace sluice

#endif  // SLUICE_OUTPUT_IMG2DATASET_FLAVOUR_H_
