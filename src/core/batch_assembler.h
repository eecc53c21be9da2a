// BatchAssembler: puts batches back together from the chunks reaching the end of
// the stage chain.
//
// A batch leaves Submit() as one or more chunks; stages (async ones especially)
// reorder records and mix batches in a chunk, so its records come back in any
// order and in any number of chunks. The assembler knows each batch's size from
// Expect() and moves records into their batch until all of them arrived. The
// common case, a whole batch in one single-batch chunk, costs no record move.
//
// A batch can be dropped while its records are still on their way (its lease was
// lost): the records that arrived are freed at once, the later ones as they come,
// and the batch is reported as dropped, not complete, when its last record arrived,
// so that the runtime frees the batch's slot only when none of its records is left
// anywhere.
//
// Every REQUIRES below is checked in every build type: a broken one is reported as
// an error (a duplicate batch, a record nobody expects), never undefined behaviour
// or a batch that can never complete.
//
// Not thread-safe: owned by the runtime's collector thread.
#ifndef SLUICE_CORE_BATCH_ASSEMBLER_H_
#define SLUICE_CORE_BATCH_ASSEMBLER_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sluice/record.h"
#include "sluice/status.h"
#include "src/core/channel.h"

namespace sluice {

class BatchAssembler {
 public:
  // A batch all of whose records arrived. `dropped`: the batch was dropped, and
  // `records` is empty.
  struct Finished {
    BatchId batch = 0;
    std::vector<Record> records;
    bool dropped = false;
  };
  using Completed = std::vector<Finished>;
  // Records that arrived for a batch that is not complete yet. The span stays valid
  // until the batch completes or is dropped (a batch's records never move before).
  struct Arrival {
    BatchId batch = 0;
    std::span<Record> records;
  };

  // Starts waiting for `records` records of `batch`; an empty batch is complete at
  // once. A batch already being assembled is refused with kInternal and left as it
  // was (REQUIRES: `batch` is not being assembled already).
  Status Expect(BatchId batch, std::size_t records, Completed* completed);

  // Drops `batch`: the records it holds are freed, and those still to come will be.
  // Returns false if the batch is not being assembled (complete, or never expected).
  bool Drop(BatchId batch, Completed* completed);

  // Adds a chunk's records to their batches, and appends the batches this
  // completes to `completed`, and, when `arrivals` is given, the records it added
  // to batches it leaves incomplete. Records of a batch that was not expected, or beyond
  // the count a batch was expected with, are freed and counted in
  // unexpected_records(): the caller treats that as a bug (REQUIRES: each run's
  // batch was Expect()ed, and brings no more records than it still lacks).
  void Add(Chunk chunk, Completed* completed, std::vector<Arrival>* arrivals = nullptr);

  // Batches expected and not complete (dropped ones included until their records
  // arrived).
  std::size_t open_batches() const { return batches_.size(); }
  // Records that arrived for no open batch, or over a batch's count.
  std::uint64_t unexpected_records() const { return unexpected_records_; }
  // Records still to come for batches that are not dropped.
  std::uint64_t pending_records() const { return pending_records_; }
  // Records that arrived for dropped batches (and were freed), since construction.
  std::uint64_t dropped_records_arrived() const { return dropped_records_arrived_; }

 private:
  struct Assembly {
    std::size_t expected = 0;
    std::size_t received = 0;
    bool dropped = false;
    std::vector<Record> records;
  };

  std::unordered_map<BatchId, Assembly> batches_;
  std::uint64_t unexpected_records_ = 0;
  std::uint64_t pending_records_ = 0;
  std::uint64_t dropped_records_arrived_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_CORE_BATCH_ASSEMBLER_H_
