// BatchOutput: where a batch's files go (images, metadata, stats) before its commit.
//
// The worker calls WriteBatch() once per finished batch, BEFORE Store::CommitBatch,
// and commits only if it succeeded (DESIGN.md guarantee 2). An implementation must
// therefore make each batch's output replace, not add to, what an earlier attempt
// of the same batch left: names fixed by the batch and item ids, each file written
// under a temporary name and renamed into place. Then:
//  - a crash before the rename leaves only temporary files, which readers ignore;
//  - a crash after the rename and before the commit leaves a complete output of a
//    batch that is not done: the batch is redone and its output overwritten;
//  - a batch is committed only once its output is complete, so a done batch always
//    has its output (the opposite order could lose it in a crash).
// An error from WriteBatch() (disk full, permission) leaves the batch uncommitted;
// the worker releases it and the run fails with the error.
//
// The implementation on a real filesystem is src/output/file_batch_output.h; core
// depends only on this interface.
#ifndef SLUICE_CORE_BATCH_OUTPUT_H_
#define SLUICE_CORE_BATCH_OUTPUT_H_

#include <span>

#include "sluice/record.h"
#include "sluice/status.h"

namespace sluice {

// Thread-safety: the worker calls WriteBatch() from the runtime's collector thread
// only, one batch at a time; implementations need not be thread-safe unless they are
// shared between workers.
class BatchOutput {
 public:
  virtual ~BatchOutput() = default;

  // Writes the outputs of `batch`, whose records (ok and failed) are `records`,
  // sorted by id. Returns an error naming the path that could not be written; the
  // records are only read, and stay owned by the caller.
  virtual Status WriteBatch(BatchId batch, std::span<const Record> records) = 0;
};

}  // namespace sluice

#endif  // SLUICE_CORE_BATCH_OUTPUT_H_
