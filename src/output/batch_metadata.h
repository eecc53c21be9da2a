// What the outputs say about items and batches, as JSON text, in sluice's own
// names (output.fields sluice; img2dataset's are in src/output/img2dataset_flavour.h).
//
// ItemMetadataJson(): one item's metadata object, the same shape as a line of
// `sluice export --format jsonl`:
//   {"id": 7, "url": "...", "status": "ok" | "failed", "reason": "" | "timeout" ...,
//    "error": "...", <every result field of the record>, "input": {<columns>}}
// Result fields are those Record::fields() holds with IsResultValue (text, numbers,
// booleans), in the order they were set; a field named like one of the fixed keys
// is written as "field.NAME". "input" is left out when the item has no columns.
//
// SluiceBatchStats: counts and timings of one batch, written as stats/BBBBBBBB.json:
//   {"batch": 3, "first_id": 2001, "last_id": 3000, "items": 1000, "ok": 950,
//    "failed": 50, "failures": {"timeout": 50}, "bytes_written": 123456,
//    "timings": {"download_ms": {"count": 950, "total": 1.2e5, "min": 3,
//                                "max": 900, "mean": 126.3}}}
// "bytes_written": the batch's image files (or shard) and metadata file, on disk.
// Timings are generic: every numeric result field whose name ends in "_ms".
//
// Thread-safety: the BatchStats classes are not thread-safe; the functions are.
#ifndef SLUICE_OUTPUT_BATCH_METADATA_H_
#define SLUICE_OUTPUT_BATCH_METADATA_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/record.h"
#include "src/core/batch_output.h"

namespace sluice {

// The metadata object of `record` (see above), compact, without a newline.
std::string ItemMetadataJson(const Record& record);

// The "id" of a metadata object, or nullopt if `json` is not one.
std::optional<ItemId> MetadataItemId(std::string_view json);

// The counts of one batch's items that its stats file holds; one implementation
// per output.fields flavour.
class BatchStats {
 public:
  virtual ~BatchStats() = default;
  // Counts `record`.
  virtual void Add(const Record& record) = 0;
  // Counts an item from its metadata object, as an earlier attempt of the batch
  // wrote it (for items this attempt does not redo). False if it is not one.
  virtual bool AddMetadata(std::string_view json) = 0;
  // Adds to the bytes the batch's outputs take on disk.
  virtual void AddBytesWritten(std::uint64_t bytes) = 0;
  // The stats file's text for `batch`, pretty-printed, ending in a newline.
  virtual std::string ToJson(const FinishedBatch& batch) const = 0;
};

class SluiceBatchStats final : public BatchStats {
 public:
  // Counts `record` and its timing fields.
  void Add(const Record& record) override;
  bool AddMetadata(std::string_view json) override;
  void AddBytesWritten(std::uint64_t bytes) override { bytes_written_ += bytes; }

  std::uint64_t items() const { return items_; }
  std::uint64_t ok() const { return ok_; }

  // The stats object (see above); only the batch's id is used.
  std::string ToJson(const FinishedBatch& batch) const override;

 private:
  void CountItem(ItemId id, std::string_view reason);
  void CountTiming(const std::string& name, double value);

  struct Timing {
    std::uint64_t count = 0;
    double total = 0;
    double min = 0;
    double max = 0;
  };

  std::uint64_t items_ = 0;
  std::uint64_t ok_ = 0;
  std::uint64_t filtered_ = 0;  // dropped by a filter: not in failed
  ItemId first_id_ = 0;
  ItemId last_id_ = 0;
  std::map<std::string, std::uint64_t> failures_;  // reason name -> count
  std::map<std::string, Timing> timings_;          // field name -> its values
  std::uint64_t bytes_written_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_OUTPUT_BATCH_METADATA_H_
