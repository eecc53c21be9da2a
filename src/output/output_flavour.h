// OutputFlavour: the names and JSON contents of a batch's outputs, as chosen by
// `output.fields`. FileBatchOutput (src/output/file_batch_output.h) does all the
// writing (staging, fencing, renames, redo and partial-redo merges, leftover
// cleanup) the same way for every flavour; a flavour only says what each output is
// called and what its JSON says:
//
//   output        fields sluice                  fields img2dataset
//   image dir     images/BBBBBBBB/               SSSSS/
//   shard         shards/BBBBBBBB.tar            SSSSS.tar
//   metadata      metadata/BBBBBBBB.jsonl        SSSSS.jsonl
//   stats         stats/BBBBBBBB.json            SSSSS_stats.json
//   item KEY      the item id, 10 digits         img2dataset's key (see its header)
//   item JSON     src/output/batch_metadata.h    src/output/img2dataset_flavour.h
//
// Every name depends only on the batch's extent and the item's id, which are the
// same at every attempt of a batch, so that a redo replaces and a partial redo
// merges exactly.
//
// Thread-safety: flavours are immutable; every method may be called from any thread.
#ifndef SLUICE_OUTPUT_OUTPUT_FLAVOUR_H_
#define SLUICE_OUTPUT_OUTPUT_FLAVOUR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/record.h"
#include "sluice/status.h"
#include "src/core/batch_output.h"
#include "src/core/pipeline_config.h"
#include "src/output/batch_metadata.h"

namespace sluice {

// The outputs of a batch that have a name of their own.
enum class OutputFile : std::uint8_t {
  kImages,    // layout files: the directory of the batch's images
  kShard,     // layout webdataset: the tar shard
  kMetadata,  // one JSON line per item
  kStats,     // the batch's counts
};

// Where an output goes: `dir` relative to the output root ("" = the root itself),
// and its file (or directory) name there.
struct OutputName {
  std::string dir;
  std::string name;
};

class OutputFlavour {
 public:
  virtual ~OutputFlavour() = default;

  // An error if `batch` cannot be named by this flavour (e.g. more items than keys).
  virtual Status CheckBatch(const FinishedBatch& batch) const = 0;
  // Where output `file` of `batch` goes.
  virtual OutputName Name(OutputFile file, const FinishedBatch& batch) const = 0;
  // The directories, relative to the root ("" = the root), that hold outputs:
  // where temporary names of crashed writers are looked for.
  virtual std::vector<std::string> Dirs() const = 0;

  // The KEY of `item` in `batch`: its files and members are KEY.EXT, KEY.json and
  // KEY.txt. REQUIRES: the item is inside the batch's extent.
  virtual std::string ItemKey(const FinishedBatch& batch, ItemId item) const = 0;
  // The item of `batch` whose KEY is `key`, or nullopt if `key` is none of them.
  virtual std::optional<ItemId> ItemOfKey(const FinishedBatch& batch,
                                          std::string_view key) const = 0;

  // The JSON object of `record` (its metadata line and its KEY.json), compact,
  // without a newline.
  virtual std::string ItemJson(const FinishedBatch& batch,
                               const Record& record) const = 0;
  // The item a metadata line of `batch` (as ItemJson() wrote it) is of, or nullopt
  // if `json` is not one.
  virtual std::optional<ItemId> ItemOfJson(const FinishedBatch& batch,
                                           std::string_view json) const = 0;
  // Empty counts for a batch's stats file.
  virtual std::unique_ptr<BatchStats> NewStats() const = 0;
};

// The flavour `config.fields` names. `batch_size` is the pipeline's (img2dataset's
// keys make room for that many items per shard).
std::unique_ptr<OutputFlavour> MakeOutputFlavour(const OutputConfig& config,
                                                 std::uint32_t batch_size);

// Sluice's own names: "00000042" for batch 42, "0000000042" for item 42.
std::string SluiceBatchName(BatchId batch);
std::string SluiceItemKey(ItemId item);

}  // namespace sluice

#endif  // SLUICE_OUTPUT_OUTPUT_FLAVOUR_H_
