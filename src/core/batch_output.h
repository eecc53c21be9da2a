// BatchOutput: where a batch's files go (images, metadata, stats) before its commit.
//
// For each finished batch the worker calls StageBatch(), which writes every output
// under temporary names and makes it durable, and then Store::CommitBatch with the
// staged batch's Publish() as its publish step: the store runs it inside the commit
// transaction, after the lease token was found current and before the batch is
// marked done (DESIGN.md guarantee 2). Publish() renames the staged files over
// their final names. So:
//  - a worker whose lease was taken over never replaces what the current owner
//    wrote: its token check fails before its renames, and its staged files are
//    discarded (outputs are fenced by the same token as the results);
//  - a crash before the renames leaves only temporary files, which readers ignore;
//  - a crash after the renames and before the commit leaves a complete output of a
//    batch that is not done: the batch is redone and its output overwritten;
//  - a batch is committed only once its output is in place, so a done batch always
//    has its output (the opposite order could lose it in a crash).
// An implementation must make each batch's output replace, not add to, what an
// earlier attempt left: names fixed by the batch and item ids (FinishedBatch gives
// the batch's whole extent, so that a name may also depend on an item's place in
// its batch, as img2dataset's keys do). An error from
// StageBatch() or Publish() (disk full, permission) leaves the batch uncommitted;
// the worker releases it and the run fails with the error.
//
// The implementation on a real filesystem is src/output/file_batch_output.h; core
// depends only on this interface.
#ifndef SLUICE_CORE_BATCH_OUTPUT_H_
#define SLUICE_CORE_BATCH_OUTPUT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>

#include "sluice/record.h"
#include "sluice/status.h"

namespace sluice {

// The batch StageBatch() writes: its extent as leased (the same at every attempt,
// also when only some of its items are redone) and when this attempt ran.
struct FinishedBatch {
  BatchId id = 0;
  ItemId first_item = 0;         // the batch covers [first_item, first_item + item_count)
  std::uint32_t item_count = 0;  // all of the batch's items, not only those redone
  // Wall-clock times of this attempt: when its records were handed to the stages
  // (queueing behind other batches included), and when the last one came out.
  std::chrono::system_clock::time_point started;
  std::chrono::system_clock::time_point finished;
};

// One batch's outputs, written under temporary names and durable. Destroying it
// without a successful Publish() removes them.
class StagedBatch {
 public:
  virtual ~StagedBatch() = default;
  // Renames the outputs into place, inside the commit. May be called again after a
  // commit that failed or whose outcome was unknown: it resumes where it stopped,
  // and once it succeeded, further calls do nothing.
  virtual Status Publish() = 0;
};

// Thread-safety: the worker calls StageBatch() from the runtime's collector thread
// only, one batch at a time; implementations need not be thread-safe unless they are
// shared between workers.
class BatchOutput {
 public:
  virtual ~BatchOutput() = default;

  // Stages the outputs of `batch`, whose records (ok and failed) are `records`,
  // sorted by id, each inside the batch's extent. Returns an error naming the path
  // that could not be written; the records are only read, and stay owned by the
  // caller.
  virtual Result<std::unique_ptr<StagedBatch>> StageBatch(
      const FinishedBatch& batch, std::span<const Record> records) = 0;

  // Records of `batch` that finished while the batch waits for others (a few slow
  // records: the web's tail). Drops the in-flight fields the outputs will not need,
  // and returns the bytes the records still hold for them. Collector thread.
  virtual std::uint64_t Hold(BatchId batch, std::span<Record> records) = 0;

  // Moves what Hold() left in those records out of memory (to disk), leaving what
  // StageBatch() needs to find it. Errors name the path. Collector thread.
  virtual Status Spill(BatchId batch, std::span<Record> records) = 0;

  // `batch` will not be staged (its lease was lost, or it was given back): forgets
  // what Spill() wrote for it. Thread-safe.
  virtual void Discard(BatchId batch) = 0;
};

}  // namespace sluice

#endif  // SLUICE_CORE_BATCH_OUTPUT_H_
