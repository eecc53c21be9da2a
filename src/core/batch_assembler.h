// BatchAssembler: puts batches back together from the chunks reaching the end of
// the stage chain.
//
// A batch leaves Submit() as one or more chunks; stages (async ones especially)
// reorder records and mix batches in a chunk, so its records come back in any
// order and in any number of chunks. The assembler knows each batch's size from
// Expect() and moves records into their batch until all of them arrived. The
// common case, a whole batch in one single-batch chunk, costs no record move.
//
// Not thread-safe: owned by the runtime's collector thread.
#ifndef SLUICE_CORE_BATCH_ASSEMBLER_H_
#define SLUICE_CORE_BATCH_ASSEMBLER_H_

#include <cstddef>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sluice/record.h"
#include "src/core/channel.h"

namespace sluice {

class BatchAssembler {
 public:
  using Completed = std::vector<std::pair<BatchId, std::vector<Record>>>;

  // Starts waiting for `records` records of `batch`; an empty batch is complete at
  // once. REQUIRES: `batch` is not being assembled already.
  void Expect(BatchId batch, std::size_t records, Completed* completed);

  // Adds a chunk's records to their batches, and appends the batches this
  // completes to `completed`. REQUIRES: each run's batch was Expect()ed, and brings
  // no more records than it still lacks.
  void Add(Chunk chunk, Completed* completed);

  // Batches expected and not complete.
  std::size_t open_batches() const { return batches_.size(); }

 private:
  struct Assembly {
    std::size_t expected = 0;
    std::size_t received = 0;
    std::vector<Record> records;
  };

  std::unordered_map<BatchId, Assembly> batches_;
};

}  // namespace sluice

#endif  // SLUICE_CORE_BATCH_ASSEMBLER_H_
