// FileBatchOutput: a batch's images, metadata and stats on a real filesystem.
//
// With output.fields sluice (the default), under the output root (by default
// <workdir>/output), batch B (8 or more digits, BBBBBBBB) and item I (10 or more
// digits, IIIIIIIIII = the item's KEY) give:
//
//   images/BBBBBBBB/IIIIIIIIII.EXT   layout "files": per ok item, its image bytes,
//   images/BBBBBBBB/IIIIIIIIII.json  its metadata object, and
//   images/BBBBBBBB/IIIIIIIIII.txt   its "caption" input column, when it has one
//   shards/BBBBBBBB.tar              layout "webdataset": the same three members
//                                    per ok item (KEY.EXT, KEY.json, KEY.txt), by id
//   metadata/BBBBBBBB.jsonl          metadata: one line per item (ok and failed), by id
//   stats/BBBBBBBB.json              stats: counts, failures by reason, bytes, timings
//
// Formats are in src/output/batch_metadata.h. With output.fields img2dataset the
// same outputs have img2dataset's names, keys and JSON (SSSSS.tar or SSSSS/KEY.EXT,
// SSSSS.jsonl, SSSSS_stats.json in the root: src/output/img2dataset_flavour.h). The
// flavour (src/output/output_flavour.h) only names things and writes their JSON;
// everything below holds for both.
//
// The image bytes are the Bytes field `image_field` (by default "encoded", from the
// encode stage); an ok item without it is an error (the pipeline lacks an encode
// stage, or output.image_field names the wrong field). EXT is the record's "ext"
// text field (set by encode; an error if it is not 1 to 8 of a-z, 0-9), else
// derived from decode's "format" or fetch's "content_type" ("jpeg" -> "jpg"), else
// "bin" (saving raw downloads: body as image_field).
//
// Every name depends only on the batch's extent and item ids, and every output of a
// batch is staged under a temporary name and renamed into place
// (src/output/staged_files.h), the batch's image directory as a whole: a redo
// replaces the earlier attempt's files, and leaves none of them behind even if it
// has fewer ok items.
//
// A redo of part of a batch (after `sluice retry`, the store hands out only the
// items without a result) merges by item id: the outputs the earlier attempt wrote
// for the items not redone carry over (metadata lines, image files linked into the
// new directory, shard members copied), those of the redone items are replaced.
// Stats are recounted over the merged items; with metadata off, the carried-over
// items are known only from their images' JSON, so only ok ones are counted.
//
// Thread-safety: StageBatch() may be called from one thread at a time (the worker's
// collector thread). Several processes, also on several hosts, may write the same
// root: Prepare() removes only the temporary names of dead processes of this host.
#ifndef SLUICE_OUTPUT_FILE_BATCH_OUTPUT_H_
#define SLUICE_OUTPUT_FILE_BATCH_OUTPUT_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/record.h"
#include "sluice/status.h"
#include "src/core/batch_output.h"
#include "src/core/pipeline_config.h"
#include "src/output/output_flavour.h"
#include "src/output/staged_files.h"

namespace sluice {

class FileBatchOutput final : public BatchOutput {
 public:
  // `config.dir` is ignored: `root` is the resolved output directory. `batch_size`
  // is the pipeline's (img2dataset's keys depend on it).
  FileBatchOutput(OutputConfig config, std::uint32_t batch_size,
                  std::filesystem::path root);

  // Creates the root and removes what crashed writers of this host left (temporary
  // names of processes that no longer run, see RemoveLeftovers()). Those of writers
  // on other hosts are kept: counted in leftovers() and, so that a person can
  // remove them, named on stderr (one line per directory holding some). Call at run
  // start, before this process writes to the root.
  Status Prepare();

  // What the last Prepare() found.
  const LeftoverCount& leftovers() const { return leftovers_; }

  // Writes the batch's outputs under temporary names and flushes them; Publish()
  // on the result renames them into place.
  // An error also if a record is outside the batch's extent, or the flavour
  // cannot name the batch.
  Result<std::unique_ptr<StagedBatch>> StageBatch(
      const FinishedBatch& batch, std::span<const Record> records) override;
  // StageBatch() and Publish() at once (no lease to check: tools and tests).
  Status WriteBatch(const FinishedBatch& batch, std::span<const Record> records);

  // Early records of a waiting batch: keeps only an ok item's image_field of the
  // in-flight fields (none with layout none). Spill() appends those bytes to the
  // batch's spill file (OUTPUT/spill/.BBBBBBBB.tmp-TAG, a leftover name if the
  // process dies) and leaves a reference in their place, read back by StageBatch().
  // Thread-safe against Discard(), which another thread may call.
  std::uint64_t Hold(BatchId batch, std::span<Record> records) override;
  Status Spill(BatchId batch, std::span<Record> records) override;
  void Discard(BatchId batch) override;
  ~FileBatchOutput() override;

  const std::filesystem::path& root() const { return root_; }

  // "00000042": a batch's name in the output tree, with fields sluice.
  static std::string BatchName(BatchId batch) { return SluiceBatchName(batch); }
  // "0000000042": an item's key (file and member names), with fields sluice.
  static std::string ItemKey(ItemId item) { return SluiceItemKey(item); }

 private:
  // Stage the images of `records` as the batch's directory (files layout) or its
  // tar shard (webdataset), with those of the earlier attempt's items not in
  // `redone`. They add the bytes written to `*bytes`, and the carried-over items'
  // metadata objects to `*kept_metadata`.
  Status StageImageFiles(const FinishedBatch& batch, std::span<const Record> records,
                         const std::set<ItemId>& redone, StagedFiles& staged,
                         std::uint64_t* bytes,
                         std::vector<std::string>* kept_metadata) const;
  Status StageShard(const FinishedBatch& batch, std::span<const Record> records,
                    const std::set<ItemId>& redone, StagedFiles& staged,
                    std::uint64_t* bytes, std::vector<std::string>* kept_metadata) const;
  // The lines of the batch's existing metadata file whose items are not in `redone`,
  // with their ids, in file order.
  Result<std::vector<std::pair<ItemId, std::string>>> KeptMetadataLines(
      const FinishedBatch& batch, const std::set<ItemId>& redone) const;
  // The directory an output of that name goes in (under the root).
  std::filesystem::path DirOf(const OutputName& name) const;
  // The item a file or member name ("KEY.EXT") is of, or nullopt for other names.
  std::optional<ItemId> ItemOfName(const FinishedBatch& batch,
                                   std::string_view name) const;

  const OutputConfig config_;
  const std::filesystem::path root_;
  const std::unique_ptr<const OutputFlavour> flavour_;  // from config_.fields

  struct SpillFile {
    std::filesystem::path path;
    int fd = -1;
    std::uint64_t size = 0;  // bytes written
  };
  std::mutex spill_mu_;
  std::map<BatchId, SpillFile> spills_;  // guarded by spill_mu_
  std::uint64_t spill_counter_ = 0;      // guarded by spill_mu_
  LeftoverCount leftovers_;
};

}  // namespace sluice

#endif  // SLUICE_OUTPUT_FILE_BATCH_OUTPUT_H_
