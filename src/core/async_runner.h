// AsyncStageRunner: drives one AsyncStage on its own event-loop thread.
//
// The runner takes chunks from the stage's input channel while the stage has fewer
// than max_in_flight() records started, and starts them one record at a time (the
// rest of a taken chunk waits in the runner, so at most one chunk is held back).
// Records that already failed are not started: they go straight to the output.
// Completed records are gathered into an output chunk, which is handed on when it is
// full, when nothing is in flight any more (no more completions are coming), or
// kFlushDelay after its first record arrived, so that the last records of a batch
// are never stuck waiting for a chunk to fill. While output chunks wait for room
// downstream, no new records are admitted: the stage's backlog stays bounded.
//
// Deadlines: every record started gets a timer at the stage's record_deadline().
// When it fires, the runner calls AsyncStage::Abandon(); a record the stage gives
// back from inside that call goes on as usual (failed, kTimeout); otherwise the runner
// fails a record of its own with the same id and batch, and discards the stage's late
// Complete() of it if one ever comes. So no record stays in a stage past its
// deadline, whatever the stage does.
//
// AsyncContext::Complete() gives back only the record, so the runner finds the
// record's batch again by its item id. Item ids are unique in sluice; should a
// record arrive while another record with the same id but of a different batch is
// in flight, the newcomer is failed as "internal" instead of being started, so that
// no batch is ever miscounted.
//
// Thread-safety: Start(), Stop() and Join() are called by the runtime;
// InputPushed() and OutputPopped() with the runtime mutex held, from any thread;
// the counters from any thread. Everything else runs on the runner's thread.
#ifndef SLUICE_CORE_ASYNC_RUNNER_H_
#define SLUICE_CORE_ASYNC_RUNNER_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "sluice/stage.h"
#include "sluice/status.h"
#include "src/core/channel.h"
#include "src/core/metrics.h"
#include "src/core/event_loop.h"

namespace sluice {

class AsyncStageRunner final : private AsyncContext {
 public:
  // How long a partial output chunk may wait for more records.
  static constexpr std::chrono::milliseconds kFlushDelay{1};

  // Where the runner sits in the runtime. Pointers are not owned and must outlive
  // the runner; the channels are guarded by *mu.
  struct Wiring {
    std::string name;            // the stage's name, for messages
    std::size_t input_channel = 0;   // the observer's number for `input`
    std::size_t output_channel = 0;  // and for `output`
    std::size_t chunk_size = 1;  // records per output chunk
    std::mutex* mu = nullptr;
    ChunkChannel* input = nullptr;
    ChunkChannel* output = nullptr;
    ChannelObserver* observer = nullptr;
    // Called (on the loop thread, at most once) when the stage reports that it
    // cannot work at all (AsyncContext::FailStage).
    std::function<void(Status)> failed;
  };

  // `stage` must outlive the runner's thread (not the runner: its destructor does
  // not touch the stage).
  static Result<std::unique_ptr<AsyncStageRunner>> Create(AsyncStage& stage,
                                                          Wiring wiring);
  ~AsyncStageRunner() override;  // REQUIRES: Join() was called if Start() was.

  AsyncStageRunner(const AsyncStageRunner&) = delete;
  AsyncStageRunner& operator=(const AsyncStageRunner&) = delete;

  // Starts the loop thread. May throw std::system_error, like std::thread.
  void Start();
  // Asks the thread to exit after its current iteration; records in flight stay
  // with the stage. Thread-safe.
  void Stop();
  // Waits for the thread to exit.
  void Join();

  // Called with the runtime mutex held after a chunk entered the input channel /
  // left the output channel; wakes the loop if it waits for that.
  void InputPushed();
  void OutputPopped();

  // Counters; thread-safe, approximate while running.
  std::uint64_t records_in() const { return records_in_.load(std::memory_order_relaxed); }
  std::uint64_t records_failed() const {
    return records_failed_.load(std::memory_order_relaxed);
  }
  std::size_t in_flight() const {
    return in_flight_published_.load(std::memory_order_relaxed);
  }
  // Records the stage gave back (completed or abandoned).
  std::uint64_t records_out() const {
    return records_out_.load(std::memory_order_relaxed);
  }
  // Records whose deadline passed.
  std::uint64_t records_abandoned() const {
    return records_abandoned_.load(std::memory_order_relaxed);
  }
  // How long the records given back spent in the stage, from Start() to Complete().
  SecondsHistogram seconds() const;

 private:
  // An item id started and not completed, with its batch.
  struct InFlight {
    BatchId batch;
    std::size_t count;  // > 1 only if a batch holds the same id twice
    EventLoop::TimerId deadline_timer = 0;
    EventLoop::Clock::time_point started{};
  };

  AsyncStageRunner(AsyncStage& stage, Wiring wiring,
                   std::unique_ptr<EpollEventLoop> loop);

  // AsyncContext:
  EventLoop& loop() override { return *loop_; }
  void Complete(Record record) override;
  void FailStage(Status error) override;

  // The record `id`'s deadline passed. Loop thread.
  void DeadlinePassed(ItemId id);

  void ThreadMain();
  // Moves records along after each loop iteration: starts taken records, hands on
  // finished chunks, takes new input. Loop thread.
  void Pump();
  // Starts records of pending_ while the stage has room. Loop thread.
  void StartPending();
  // Adds a record to the open output chunk. Loop thread.
  void Emit(BatchId batch, Record record);
  // Moves the open chunk to ready_. Loop thread.
  void FlushOpen();

  AsyncStage& stage_;
  const Wiring wiring_;
  const std::unique_ptr<EpollEventLoop> loop_;
  const std::chrono::milliseconds deadline_;  // the stage's record_deadline()
  std::thread thread_;
  std::atomic<bool> stop_{false};

  // Loop-thread state.
  Chunk pending_;                     // taken from the input, not all started yet
  std::size_t pending_pos_ = 0;       // next record of pending_ to start
  std::size_t pending_run_ = 0;       // run of pending_pos_ in pending_.runs
  std::size_t pending_run_left_ = 0;  // records of that run not yet started
  std::unordered_map<ItemId, InFlight> in_flight_batches_;
  // Records failed by the runner at their deadline whose stage kept them: the
  // stage's late Complete() of one is discarded. Entries: copies still held.
  std::unordered_map<ItemId, std::size_t> abandoned_;
  bool stage_failed_ = false;
  std::size_t in_flight_ = 0;
  Chunk open_;                          // completed records gathering into a chunk
  EventLoop::TimerId flush_timer_ = 0;  // 0: not armed
  std::deque<Chunk> ready_;             // full or flushed chunks waiting for output room

  // Guarded by *wiring_.mu: set when the loop sleeps until input arrives / output
  // room frees, so that the other side wakes it only then.
  bool waiting_for_input_ = false;
  bool waiting_for_room_ = false;

  std::atomic<std::uint64_t> records_in_{0};
  std::atomic<std::uint64_t> records_failed_{0};
  std::atomic<std::size_t> in_flight_published_{0};
  std::atomic<std::uint64_t> records_out_{0};
  // seconds(): a count per bucket and the total, in microseconds (loop thread adds).
  std::array<std::atomic<std::uint64_t>, SecondsHistogram::kBounds.size() + 1>
      seconds_counts_{};
  std::atomic<std::uint64_t> seconds_sum_us_{0};
  std::atomic<std::uint64_t> records_abandoned_{0};
};

}  // namespace sluice

#endif  // SLUICE_CORE_ASYNC_RUNNER_H_
