// ReduceOutput: the files of a pipeline's reduce nodes (src/core/reduce.h), beside
// its other outputs. Under the output root, for reduce node NAME:
//
//   reduce/NAME/BBBBBBBB.json   each batch's part (src/core/reduce_part.h), staged
//                               with the batch's other outputs and published in its
//                               commit (src/core/batch_output.h): fenced by the same
//                               lease token, and replaced, not added to, by a redo
//   reduce/NAME.json            the result (ReduceTable::ResultJson() plus
//                               "complete" and "batches"): once the run is done, the
//                               merge of every batch's part in batch order, the same
//                               whatever the interleaving and however many attempts
//                               and processes made them ("complete": true); while it
//                               runs, every emit_seconds, a view of the parts this
//                               process committed so far ("complete": false)
//
// It wraps the pipeline's other BatchOutput (or none) and hands it everything else.
//
// Thread-safety: as BatchOutput (StageBatch() on the collector thread); Publish()
// of what it staged, WriteResults() and WriteViews() may run on other threads.
#ifndef SLUICE_OUTPUT_REDUCE_OUTPUT_H_
#define SLUICE_OUTPUT_REDUCE_OUTPUT_H_

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <vector>

#include "sluice/record.h"
#include "sluice/status.h"
#include "src/core/batch_output.h"
#include "src/core/reduce.h"

namespace sluice {

class ReduceBatchPart;

class ReduceOutput final : public BatchOutput {
 public:
  using Clock = std::chrono::steady_clock;

  // `inner`: the pipeline's other outputs, or nullptr; not owned, outlives this.
  // REQUIRES: `reducers` is not empty.
  ReduceOutput(std::vector<std::shared_ptr<const ReduceSpec>> reducers,
               std::filesystem::path root, BatchOutput* inner);

  // Creates reduce/NAME/ under the root and removes what crashed writers of this host
  // left there. Call at run start.
  Status Prepare();

  // The inner output's staged batch, and each reduce's part of the batch. A batch
  // redone in part (fewer records than items) starts from the part its earlier
  // attempt committed: an error (naming the file) when that part is missing or
  // unreadable, rather than a result that counts wrong.
  Result<std::unique_ptr<StagedBatch>> StageBatch(
      const FinishedBatch& batch, std::span<const Record> records) override;
  std::uint64_t Hold(BatchId batch, std::span<Record> records) override;
  Status Spill(BatchId batch, std::span<Record> records) override;
  void Discard(BatchId batch) override;

  // Writes each reduce's result, complete, from every part under the root (errors
  // name the file). Call when every batch is done.
  Status WriteResults();
  // Writes each reduce's view of the parts this process committed (incomplete).
  Status WriteViews();

  // The directory of a reduce's parts, and its result file.
  std::filesystem::path PartsDir(const ReduceSpec& spec) const;
  std::filesystem::path ResultPath(const ReduceSpec& spec) const;

 private:
  struct View {
    std::shared_ptr<const ReduceSpec> spec;
    ReduceTable table;                 // GUARDED_BY(mutex_)
    Clock::time_point last_emit;       // GUARDED_BY(mutex_)
  };
  class Staged;

  // The earlier part of `batch` for `spec`, read from its file.
  Result<std::unique_ptr<ReduceBatchPart>> EarlierPart(const ReduceSpec& spec,
                                                             BatchId batch) const;
  // Folds a committed batch's parts into the views (once per batch).
  void Committed(BatchId batch, std::vector<ReduceTable> tables);

  const std::vector<std::shared_ptr<const ReduceSpec>> reducers_;
  const std::filesystem::path root_;
  BatchOutput* const inner_;

  std::mutex mutex_;
  std::vector<View> views_;        // GUARDED_BY(mutex_): one per reducer
  std::set<BatchId> viewed_;       // GUARDED_BY(mutex_): batches folded into views_
};

}  // namespace sluice

#endif  // SLUICE_OUTPUT_REDUCE_OUTPUT_H_
