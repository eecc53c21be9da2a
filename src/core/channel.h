// Chunks and the bounded channels that carry them between stages.
//
// A Chunk is the unit the runtime moves: up to RuntimeOptions::chunk_size records,
// with the batch each record belongs to kept as runs of (batch, count). Chunks built
// by Submit() hold one batch; chunks an async stage emits mix batches, because its
// records complete out of order.
//
// A ChunkChannel is a bounded FIFO of chunks. A CPU pool thread reserves a slot in
// its output channel before it takes an input chunk, so that it never waits for room
// with a chunk in hand: a slot is either queued or reserved, and the two together
// never exceed the capacity.
//
// Neither class is thread-safe: the runtime guards every channel with its one mutex.
#ifndef SLUICE_CORE_CHANNEL_H_
#define SLUICE_CORE_CHANNEL_H_

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "sluice/record.h"

namespace sluice {

// `count` consecutive records of one batch.
struct BatchRun {
  BatchId batch = 0;
  std::size_t count = 0;
};

struct Chunk {
  std::vector<Record> records;
  // Which batch each record belongs to, in the order of `records`; the counts sum
  // to records.size().
  std::vector<BatchRun> runs;
  // How many of `records` have failed; kept up to date by whoever changes them, so
  // that stages can count the failures they add without a second pass.
  std::size_t failed = 0;

  // Appends `record` of `batch`, extending the last run when it is the same batch.
  void Append(BatchId batch, Record record) {
    if (record.failed()) ++failed;
    records.push_back(std::move(record));
    if (!runs.empty() && runs.back().batch == batch) {
      ++runs.back().count;
    } else {
      runs.push_back(BatchRun{batch, 1});
    }
  }

  bool empty() const { return records.empty(); }
  std::size_t size() const { return records.size(); }
};

// The number of failed records in `records`.
std::size_t CountFailed(const std::vector<Record>& records);

// Splits one batch into chunks of at most `chunk_size` records. The first chunk
// keeps the batch's own vector, so a batch that fits one chunk is not copied.
// REQUIRES: chunk_size >= 1, !records.empty().
std::vector<Chunk> SplitIntoChunks(BatchId batch, std::vector<Record> records,
                                   std::size_t chunk_size);

// Told by whoever moves a chunk through a channel, so that the party waiting on the
// other side can be woken. Calls are made with the runtime mutex held and must not
// block.
class ChannelObserver {
 public:
  virtual ~ChannelObserver() = default;
  // A chunk was pushed into channel `channel`.
  virtual void ChunkPushed(std::size_t channel) = 0;
  // A chunk was popped from channel `channel`: it has room again.
  virtual void ChunkPopped(std::size_t channel) = 0;
};

class ChunkChannel {
 public:
  // REQUIRES: capacity >= 1.
  explicit ChunkChannel(std::size_t capacity) : capacity_(capacity) {
    assert(capacity >= 1);
  }

  bool empty() const { return chunks_.empty(); }
  // Chunks queued (not counting reserved slots).
  std::size_t size() const { return chunks_.size(); }

  // True when a chunk can be pushed or a slot reserved without exceeding capacity.
  bool HasRoom() const { return HasRoomFor(1); }
  // True when `slots` chunks can be pushed or reserved.
  bool HasRoomFor(std::size_t slots) const {
    return chunks_.size() + reserved_ + slots <= capacity_;
  }

  // REQUIRES: HasRoom().
  void Reserve() {
    assert(HasRoom());
    ++reserved_;
  }
  // Gives back a slot taken with Reserve() without filling it.
  void CancelReservation() {
    assert(reserved_ > 0);
    --reserved_;
  }
  // Fills a slot taken with Reserve().
  void PushReserved(Chunk chunk) {
    assert(reserved_ > 0);
    --reserved_;
    chunks_.push_back(std::move(chunk));
  }

  // REQUIRES: HasRoom().
  void Push(Chunk chunk) {
    assert(HasRoom());
    chunks_.push_back(std::move(chunk));
  }

  // REQUIRES: !empty().
  Chunk Pop() {
    assert(!chunks_.empty());
    Chunk chunk = std::move(chunks_.front());
    chunks_.pop_front();
    return chunk;
  }

  // Drops every queued chunk (used when the runtime aborts).
  void Clear() { chunks_.clear(); }

 private:
  const std::size_t capacity_;
  std::size_t reserved_ = 0;
  std::deque<Chunk> chunks_;
};

}  // namespace sluice

#endif  // SLUICE_CORE_CHANNEL_H_
