// The runtime's moving parts, all around one mutex (mu_):
//
//   Submit() --chunks--> channel 0 --> stage 0 --> channel 1 --> ... --> channel n
//                                                                          |
//                                            collector thread <------------+
//
// Channel i feeds stage i; channel n feeds the collector. Every channel, the batch
// budget and the wake-up flags are guarded by mu_. The lock is taken once per chunk
// per hop, never per record; the work on records (stage calls, moving records into
// their batch) runs outside it. Whoever pushes or pops a chunk calls ChunkPushed()
// or ChunkPopped(), which wakes the party on the other side only if it sleeps
// waiting for exactly that, so that the common case costs no system call.
//
// A pool thread finishing stage s hands its chunk straight to stage s + 1 (when that
// is a CPU stage with nothing queued and room in its output) instead of queueing
// it: one lock per hop, and the chunk stays in the thread's cache.
#include "src/core/runtime.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <utility>

#include "src/core/async_runner.h"
#include "src/core/batch_assembler.h"
#include "src/core/channel.h"

namespace sluice {
namespace {

constexpr std::size_t kNoStage = std::numeric_limits<std::size_t>::max();

// The runtime whose collector thread this is (it runs the BatchDone callback), so
// that Abort() from inside the callback does not wait for its own thread.
thread_local const void* tls_collector_of = nullptr;

}  // namespace

class Runtime::Impl final : public ChannelObserver {
 public:
  Impl(RuntimeOptions options, std::vector<NamedStage> stages, BatchDone done,
       RuntimeFailed failed, BatchPartial partial);
  ~Impl() override;

  Status Start();
  Status Submit(BatchId batch, std::vector<Record> records);
  Status SubmitFrom(BatchId batch, std::size_t count, const RecordSource& next);
  // Waits for the batch budget and registers `batch` with `count` records. REQUIRES:
  // `lock` holds mu_.
  Status Admit(std::unique_lock<std::mutex>& lock, BatchId batch, std::size_t count);
  // Waits until the first channel has room; kCancelled once stopping.
  Status WaitForInputRoom(std::unique_lock<std::mutex>& lock);
  bool DropBatch(BatchId batch);
  void CloseInput();
  void Finish();
  void Abort();
  std::size_t batches_in_flight() const;
  RuntimeProgress Progress() const;
  Status error() const;
  std::vector<StageCounters> Counters() const;

  // ChannelObserver; mu_ held.
  void ChunkPushed(std::size_t channel) override;
  void ChunkPopped(std::size_t channel) override;

 private:
  // A batch submitted and not yet seen by the collector.
  struct Registration {
    BatchId batch;
    std::size_t records;
  };
  struct CpuCounters {
    std::uint64_t records_in = 0;
    std::uint64_t records_failed = 0;
    SecondsHistogram seconds;
  };

  bool IsCpu(std::size_t stage) const { return cpu_stages_[stage] != nullptr; }
  // True if CPU stage `stage` has input and room for its output. mu_ held.
  bool CpuRunnable(std::size_t stage) const {
    return !channels_[stage].empty() && channels_[stage + 1].HasRoom();
  }
  void WakeOnePoolThread() {
    if (idle_pool_threads_ > 0) pool_cv_.notify_one();
  }

  void PoolThread();
  // Takes a chunk for the runnable CPU stage nearest the sink, reserving room in
  // its output. Returns the stage, or kNoStage. mu_ held.
  std::size_t TakeCpuWork(Chunk* chunk);
  // Passes on a chunk stage `stage` processed; may hand it straight to the next
  // stage, whose index it then returns (else kNoStage). mu_ held.
  std::size_t DeliverCpuChunk(std::size_t stage, Chunk* chunk);

  void CollectorThread();

  // Stops everything because the runtime cannot go on; the first error wins and is
  // passed to failed_. Takes mu_; callable from any runtime thread.
  void Fail(Status error);
  // True if every run of `chunk` belongs to a dropped batch. mu_ held.
  bool AllDropped(const Chunk& chunk) const;
  // Why Submit() cannot take a batch now that the runtime stopped. mu_ held.
  Status StoppedStatus() const;

  // Wakes every thread so that it sees stopping_ / aborted_. mu_ held.
  void WakeAll();
  void JoinThreads();

  const RuntimeOptions options_;
  const BatchDone done_;
  const RuntimeFailed failed_;
  const BatchPartial partial_;
  // Declared before stages_ so that stages die first: a stage's destructor may still
  // use the event loop it ran on (cancel timers, unwatch fds).
  std::vector<std::unique_ptr<AsyncStageRunner>> runners_;  // null for CPU stages
  std::vector<NamedStage> stages_;
  std::vector<CpuStage*> cpu_stages_;  // null for async stages

  mutable std::mutex mu_;
  // Channel i feeds stage i; the last feeds the collector. Guarded by mu_.
  std::vector<ChunkChannel> channels_;
  std::vector<CpuCounters> cpu_counters_;    // guarded by mu_
  std::size_t batches_in_flight_ = 0;        // guarded by mu_
  std::vector<Registration> registrations_;  // guarded by mu_
  // Batches submitted and not reported (or drained): what Submit() checks against.
  std::unordered_set<BatchId> in_flight_set_;  // guarded by mu_
  // Dropped batches whose records are still on their way.
  std::unordered_set<BatchId> dropped_set_;  // guarded by mu_
  std::vector<BatchId> drops_;               // guarded by mu_: for the collector
  std::uint64_t records_in_flight_ = 0;      // guarded by mu_: all, dropped included
  std::uint64_t records_draining_ = 0;       // guarded by mu_: of dropped batches
  std::uint64_t records_done_ = 0;           // guarded by mu_
  std::uint64_t records_arrived_ = 0;        // guarded by mu_: at the collector
  Status error_;                             // guarded by mu_: the first failure
  bool started_ = false;                     // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_: no more work will come
  bool input_closed_ = false;                // guarded by mu_: CloseInput() called
  // Written under mu_; also read without it by the collector between callbacks.
  std::atomic<bool> aborted_{false};
  std::size_t idle_pool_threads_ = 0;  // guarded by mu_
  std::size_t pool_size_ = 0;          // guarded by mu_: the pool threads started
  bool source_waiting_ = false;        // guarded by mu_
  bool collector_waiting_ = false;     // guarded by mu_
  std::condition_variable pool_cv_;
  std::condition_variable source_cv_;
  std::condition_variable collector_cv_;
  std::condition_variable drained_cv_;  // batches_in_flight_ reached 0, or abort

  // Serialises starting and joining threads (Finish and Abort may race).
  std::mutex lifecycle_mu_;
  std::vector<std::thread> pool_;  // guarded by lifecycle_mu_
  std::thread collector_;          // guarded by lifecycle_mu_
};

Runtime::Impl::Impl(RuntimeOptions options, std::vector<NamedStage> stages,
                    BatchDone done, RuntimeFailed failed, BatchPartial partial)
    : options_(options),
      done_(std::move(done)),
      failed_(std::move(failed)),
      partial_(std::move(partial)),
      stages_(std::move(stages)) {
  runners_.resize(stages_.size());
  for (NamedStage& named : stages_) {
    cpu_stages_.push_back(named.stage != nullptr &&
                                  named.stage->kind() == Stage::Kind::kCpu
                              ? static_cast<CpuStage*>(named.stage.get())
                              : nullptr);
  }
  channels_.reserve(stages_.size() + 1);
  for (std::size_t i = 0; i <= stages_.size(); ++i) {
    channels_.emplace_back(std::max<std::size_t>(options_.channel_capacity, 1));
  }
  cpu_counters_.resize(stages_.size());
}

Runtime::Impl::~Impl() {
  Abort();
  stages_.clear();  // before the runners' event loops, see runners_
  runners_.clear();
}

Status Runtime::Impl::Start() {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_ || stopping_) return InvalidArgument("runtime: already started");
  }
  if (stages_.empty()) return InvalidArgument("runtime: no stages");
  if (options_.chunk_size == 0 || options_.channel_capacity == 0 ||
      options_.max_batches_in_flight == 0) {
    return InvalidArgument(
        "runtime: chunk_size, channel_capacity and max_batches_in_flight must be >= 1");
  }
  bool has_cpu_stage = false;
  std::vector<std::unique_ptr<AsyncStageRunner>> runners(stages_.size());
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    if (stages_[i].stage == nullptr) {
      return InvalidArgument("runtime: stage " + stages_[i].name + " is null");
    }
    if (IsCpu(i)) {
      has_cpu_stage = true;
      continue;
    }
    if (static_cast<AsyncStage&>(*stages_[i].stage).max_in_flight() == 0) {
      return InvalidArgument("runtime: stage " + stages_[i].name +
                             ": max_in_flight() is 0, it could never start a record");
    }
    AsyncStageRunner::Wiring wiring;
    wiring.name = stages_[i].name;
    wiring.index = i;
    wiring.chunk_size = options_.chunk_size;
    wiring.mu = &mu_;
    wiring.input = &channels_[i];
    wiring.output = &channels_[i + 1];
    wiring.observer = this;
    wiring.failed = [this](Status error) { Fail(std::move(error)); };
    auto runner =
        AsyncStageRunner::Create(static_cast<AsyncStage&>(*stages_[i].stage), wiring);
    if (!runner.ok()) return runner.status().WithContext("runtime");
    runners[i] = std::move(runner).value();
  }
  std::size_t pool_size = 0;
  if (has_cpu_stage) {
    pool_size = options_.cpu_threads != 0
                    ? options_.cpu_threads
                    : std::max<std::size_t>(1, std::thread::hardware_concurrency());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    runners_ = std::move(runners);  // Counters() may read them from now on
    started_ = true;
  }
  try {
    collector_ = std::thread([this] { CollectorThread(); });
    for (std::size_t i = 0; i < pool_size; ++i) {
      pool_.emplace_back([this] { PoolThread(); });
      std::lock_guard<std::mutex> lock(mu_);
      ++pool_size_;
    }
    for (auto& runner : runners_) {
      if (runner != nullptr) runner->Start();
    }
  } catch (const std::system_error& e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      aborted_ = true;
      stopping_ = true;
      WakeAll();
    }
    for (auto& thread : pool_) thread.join();
    if (collector_.joinable()) collector_.join();
    for (auto& runner : runners_) {
      if (runner != nullptr) runner->Join();
    }
    return Internal(std::string("runtime: cannot start threads: ") + e.what());
  }
  return Status::Ok();
}

Status Runtime::Impl::StoppedStatus() const {
  if (!error_.ok()) return error_;
  if (!started_) return Cancelled("runtime: not started");
  if (input_closed_ && !stopping_) return Cancelled("runtime: input closed");
  return Cancelled("runtime: stopped");
}

Status Runtime::Impl::Submit(BatchId batch, std::vector<Record> records) {
  const std::size_t count = records.size();
  std::vector<Chunk> chunks;
  if (count != 0) {
    chunks = SplitIntoChunks(batch, std::move(records), options_.chunk_size);
  }
  std::unique_lock<std::mutex> lock(mu_);
  SLUICE_RETURN_IF_ERROR(Admit(lock, batch, count));
  for (Chunk& chunk : chunks) {
    SLUICE_RETURN_IF_ERROR(WaitForInputRoom(lock));
    channels_[0].Push(std::move(chunk));
    ChunkPushed(0);
  }
  return Status::Ok();
}

Status Runtime::Impl::SubmitFrom(BatchId batch, std::size_t count,
                                 const RecordSource& next) {
  std::unique_lock<std::mutex> lock(mu_);
  SLUICE_RETURN_IF_ERROR(Admit(lock, batch, count));
  for (std::size_t given = 0; given < count;) {
    // Made once there is room for it: the records do not wait here.
    SLUICE_RETURN_IF_ERROR(WaitForInputRoom(lock));
    lock.unlock();
    Chunk chunk;
    const std::size_t size = std::min(options_.chunk_size, count - given);
    chunk.records.reserve(size);
    for (std::size_t i = 0; i < size; ++i) chunk.Append(batch, next());
    given += size;
    lock.lock();
    // Only this thread pushes to the first channel: the room is still there.
    if (stopping_) return StoppedStatus();
    channels_[0].Push(std::move(chunk));
    ChunkPushed(0);
  }
  return Status::Ok();
}

Status Runtime::Impl::Admit(std::unique_lock<std::mutex>& lock, BatchId batch,
                            std::size_t count) {
  if (in_flight_set_.contains(batch) && !dropped_set_.contains(batch)) {
    return Internal(
        fmt::format("runtime: batch {} submitted while it is in flight", batch));
  }
  // A dropped earlier submission of this batch may still have records in the
  // stages, with the same item ids: wait until the last of them arrived. Bounded:
  // every record has a deadline.
  auto over_record_budget = [&] {
    return options_.max_records_in_flight != 0 && records_in_flight_ != 0 &&
           records_in_flight_ + count > options_.max_records_in_flight;
  };
  while (started_ && !stopping_ && !input_closed_ &&
         (batches_in_flight_ >= options_.max_batches_in_flight || over_record_budget() ||
          in_flight_set_.contains(batch))) {
    source_waiting_ = true;
    source_cv_.wait(lock);
  }
  source_waiting_ = false;
  if (!started_ || stopping_ || input_closed_) return StoppedStatus();
  ++batches_in_flight_;
  in_flight_set_.insert(batch);
  records_in_flight_ += count;
  registrations_.push_back(Registration{batch, count});
  if (count == 0 && collector_waiting_) collector_cv_.notify_one();
  return Status::Ok();
}

Status Runtime::Impl::WaitForInputRoom(std::unique_lock<std::mutex>& lock) {
  while (!stopping_ && !channels_[0].HasRoom()) {
    source_waiting_ = true;
    source_cv_.wait(lock);
  }
  source_waiting_ = false;
  // Only an abort stops a batch half-way; its records are dropped with it.
  if (stopping_) return StoppedStatus();
  return Status::Ok();
}

void Runtime::Impl::CloseInput() {
  std::lock_guard<std::mutex> lock(mu_);
  input_closed_ = true;
  source_cv_.notify_all();
}

bool Runtime::Impl::DropBatch(BatchId batch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!in_flight_set_.contains(batch) || dropped_set_.contains(batch)) return false;
  dropped_set_.insert(batch);
  drops_.push_back(batch);
  if (collector_waiting_) collector_cv_.notify_one();
  return true;
}

bool Runtime::Impl::AllDropped(const Chunk& chunk) const {
  if (dropped_set_.empty()) return false;
  for (const BatchRun& run : chunk.runs) {
    if (!dropped_set_.contains(run.batch)) return false;
  }
  return true;
}

void Runtime::Impl::Fail(Status error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_.ok()) return;
    error_ = error;
    aborted_ = true;
    stopping_ = true;
    WakeAll();
  }
  if (failed_) failed_(error);
}

void Runtime::Impl::ChunkPushed(std::size_t channel) {
  if (channel == stages_.size()) {
    if (collector_waiting_) collector_cv_.notify_one();
  } else if (IsCpu(channel)) {
    if (channels_[channel + 1].HasRoom()) WakeOnePoolThread();
  } else {
    runners_[channel]->InputPushed();
  }
}

void Runtime::Impl::ChunkPopped(std::size_t channel) {
  if (channel == 0) {
    if (source_waiting_) source_cv_.notify_one();
    return;
  }
  const std::size_t producer = channel - 1;
  if (IsCpu(producer)) {
    if (!channels_[producer].empty()) WakeOnePoolThread();
  } else {
    runners_[producer]->OutputPopped();
  }
}

void Runtime::Impl::PoolThread() {
  std::unique_lock<std::mutex> lock(mu_);
  Chunk chunk;
  std::size_t stage = kNoStage;
  for (;;) {
    if (stopping_) break;  // an unfinished chunk is dropped: only abort stops early
    if (stage == kNoStage) stage = TakeCpuWork(&chunk);
    if (stage == kNoStage) {
      ++idle_pool_threads_;
      pool_cv_.wait(lock);
      --idle_pool_threads_;
      continue;
    }
    // A chunk of failed records only, or of dropped batches only, has nothing for
    // the stage to do.
    const bool skip = AllDropped(chunk);
    lock.unlock();
    const std::size_t failed_before = chunk.failed;
    double seconds = -1;
    if (!skip && failed_before < chunk.size()) {
      const auto started = std::chrono::steady_clock::now();
      cpu_stages_[stage]->Process(chunk.records);
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
                    .count();
      chunk.failed = CountFailed(chunk.records);
    }
    lock.lock();
    cpu_counters_[stage].records_failed += chunk.failed - failed_before;
    if (seconds >= 0) {
      // Shared by the records the stage worked on (the failed ones skipped it).
      const std::size_t worked = chunk.size() - failed_before;
      cpu_counters_[stage].seconds.Observe(seconds / static_cast<double>(worked), worked);
    }
    stage = DeliverCpuChunk(stage, &chunk);
  }
}

std::size_t Runtime::Impl::TakeCpuWork(Chunk* chunk) {
  for (std::size_t stage = stages_.size(); stage-- > 0;) {
    if (!IsCpu(stage) || !CpuRunnable(stage)) continue;
    *chunk = channels_[stage].Pop();
    channels_[stage + 1].Reserve();
    cpu_counters_[stage].records_in += chunk->size();
    ChunkPopped(stage);
    return stage;
  }
  return kNoStage;
}

std::size_t Runtime::Impl::DeliverCpuChunk(std::size_t stage, Chunk* chunk) {
  const std::size_t next = stage + 1;
  if (next < stages_.size() && IsCpu(next) && channels_[next].empty() &&
      channels_[next + 1].HasRoom()) {
    channels_[next].CancelReservation();
    ChunkPopped(next);  // the slot given back may let another thread run `stage`
    channels_[next + 1].Reserve();
    cpu_counters_[next].records_in += chunk->size();
    return next;
  }
  channels_[next].PushReserved(std::move(*chunk));
  *chunk = Chunk{};
  ChunkPushed(next);
  return kNoStage;
}

void Runtime::Impl::CollectorThread() {
  BatchAssembler assembler;
  std::vector<Registration> registrations;
  std::vector<BatchId> drops;
  std::vector<Chunk> chunks;
  std::vector<BatchAssembler::Arrival> arrivals;
  BatchAssembler::Completed done;
  tls_collector_of = this;
  ChunkChannel& sink = channels_.back();
  const std::size_t sink_index = stages_.size();

  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    while (!stopping_ && sink.empty() && registrations_.empty() && drops_.empty()) {
      collector_waiting_ = true;
      collector_cv_.wait(lock);
    }
    collector_waiting_ = false;
    if (aborted_) break;
    if (stopping_ && sink.empty() && registrations_.empty() && drops_.empty()) break;
    // Registrations first: a batch's chunks never overtake its registration, as
    // Submit() registers before it pushes. Drops next: DropBatch() accepts only a
    // registered batch.
    registrations.swap(registrations_);
    drops.swap(drops_);
    std::uint64_t arrived = 0;
    while (!sink.empty()) {
      chunks.push_back(sink.Pop());
      arrived += chunks.back().size();
      ChunkPopped(sink_index);
    }
    lock.unlock();

    Status broken;
    for (const Registration& registration : registrations) {
      Status expected = assembler.Expect(registration.batch, registration.records, &done);
      if (!expected.ok() && broken.ok()) broken = expected;
    }
    registrations.clear();
    std::uint64_t newly_draining = 0;
    for (BatchId batch : drops) {
      const std::size_t before = assembler.pending_records();
      if (assembler.Drop(batch, &done))
        newly_draining += before - assembler.pending_records();
    }
    drops.clear();
    const std::uint64_t dropped_before = assembler.dropped_records_arrived();
    const std::uint64_t unexpected_before = assembler.unexpected_records();
    for (Chunk& chunk : chunks) {
      assembler.Add(std::move(chunk), &done, partial_ ? &arrivals : nullptr);
    }
    chunks.clear();
    const std::uint64_t dropped_arrived =
        assembler.dropped_records_arrived() - dropped_before;
    if (assembler.unexpected_records() != unexpected_before && broken.ok()) {
      broken = Internal(fmt::format(
          "runtime: {} records reached the end for no batch in flight (a stage "
          "duplicated records)",
          assembler.unexpected_records() - unexpected_before));
    }
    if (!broken.ok()) {
      Fail(broken);
      break;
    }

    if (partial_ && !arrivals.empty()) {
      // Batches completed by a later chunk of this round go to BatchDone instead.
      std::erase_if(arrivals, [&](const BatchAssembler::Arrival& arrival) {
        return std::any_of(done.begin(), done.end(), [&](const auto& finished) {
          return finished.batch == arrival.batch;
        });
      });
      for (const BatchAssembler::Arrival& arrival : arrivals) {
        if (aborted_.load()) break;
        partial_(arrival.batch, arrival.records);
      }
    }
    arrivals.clear();

    lock.lock();
    records_arrived_ += arrived;
    records_in_flight_ -= std::min(records_in_flight_, arrived);
    if (arrived != 0 && source_waiting_) source_cv_.notify_all();  // record budget
    records_draining_ += newly_draining;
    records_draining_ -= std::min(records_draining_, dropped_arrived);
    records_done_ += arrived - std::min(arrived, dropped_arrived);
    std::size_t drained = 0;
    // The batches leave the set before their callback runs: the callback may make
    // its owner submit the same batch again (a redo), which must not look like a
    // duplicate.
    for (const BatchAssembler::Finished& finished : done) {
      in_flight_set_.erase(finished.batch);
      if (finished.dropped) {
        dropped_set_.erase(finished.batch);
        ++drained;
      }
    }
    if (drained != 0) {
      batches_in_flight_ -= drained;
      if (source_waiting_) source_cv_.notify_all();
      drained_cv_.notify_all();
    }
    lock.unlock();

    std::size_t reported = 0;
    for (BatchAssembler::Finished& finished : done) {
      if (finished.dropped) continue;
      if (aborted_.load()) break;  // never report after an abort began
      if (done_) done_(finished.batch, std::move(finished.records));
      ++reported;
    }
    done.clear();

    lock.lock();
    if (reported != 0) {
      batches_in_flight_ -= reported;
      if (source_waiting_) source_cv_.notify_all();
      drained_cv_.notify_all();
    }
  }
}

void Runtime::Impl::Finish() {
  if (tls_collector_of == this) {
    // It would wait for its own thread forever: a bug, reported loudly.
    std::fprintf(stderr,
                 "sluice: Runtime::Finish() called from the BatchDone callback\n");
    std::abort();
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!started_) return;
    // Dropped batches are not waited for: nothing of theirs will be reported.
    drained_cv_.wait(
        lock, [this] { return aborted_ || batches_in_flight_ == dropped_set_.size(); });
    stopping_ = true;
    WakeAll();
  }
  JoinThreads();
}

void Runtime::Impl::Abort() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    aborted_ = true;
    stopping_ = true;
    WakeAll();
  }
  // From inside the callback: only request the stop. Waiting here for the other
  // threads could deadlock with a Finish() that is joining this very thread; the
  // caller of Finish(), Abort() or the destructor joins them.
  if (tls_collector_of == this) return;
  JoinThreads();
  // Drop what was in flight now rather than at destruction. Records an async stage
  // holds go with the stage.
  std::lock_guard<std::mutex> lock(mu_);
  for (ChunkChannel& channel : channels_) channel.Clear();
  registrations_.clear();
  drops_.clear();
}

void Runtime::Impl::WakeAll() {
  pool_cv_.notify_all();
  source_cv_.notify_all();
  collector_cv_.notify_all();
  drained_cv_.notify_all();
  for (auto& runner : runners_) {
    if (runner != nullptr) runner->Stop();
  }
}

void Runtime::Impl::JoinThreads() {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  for (std::thread& thread : pool_) thread.join();
  pool_.clear();
  for (auto& runner : runners_) {
    if (runner != nullptr) runner->Join();
  }
  if (collector_.joinable()) collector_.join();
}

std::size_t Runtime::Impl::batches_in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batches_in_flight_;
}

RuntimeProgress Runtime::Impl::Progress() const {
  RuntimeProgress progress;
  std::lock_guard<std::mutex> lock(mu_);
  progress.batches_in_flight = batches_in_flight_;
  progress.batches_dropped = dropped_set_.size();
  progress.records_draining = records_draining_;
  progress.records_in_flight =
      records_in_flight_ - std::min(records_in_flight_, records_draining_);
  progress.records_done = records_done_;
  progress.movements = records_arrived_;
  progress.pool_threads = pool_size_;
  progress.pool_threads_busy = pool_size_ - std::min(pool_size_, idle_pool_threads_);
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    if (runners_[i] != nullptr) {
      progress.movements += runners_[i]->records_in() + runners_[i]->records_out();
    } else {
      progress.movements += cpu_counters_[i].records_in;
    }
  }
  return progress;
}

Status Runtime::Impl::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

std::vector<StageCounters> Runtime::Impl::Counters() const {
  std::vector<StageCounters> counters;
  counters.reserve(stages_.size());
  std::lock_guard<std::mutex> lock(mu_);
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    StageCounters& c = counters.emplace_back();
    c.name = stages_[i].name;
    c.queued_chunks = channels_[i].size();
    if (runners_[i] != nullptr) {
      c.records_in = runners_[i]->records_in();
      c.records_failed = runners_[i]->records_failed();
      c.in_flight = runners_[i]->in_flight();
      c.records_abandoned = runners_[i]->records_abandoned();
      c.waiting_for = static_cast<const AsyncStage&>(*stages_[i].stage).InFlightSummary();
      c.seconds = runners_[i]->seconds();
      c.async = true;
    } else {
      c.records_in = cpu_counters_[i].records_in;
      c.records_failed = cpu_counters_[i].records_failed;
      c.seconds = cpu_counters_[i].seconds;
    }
    c.own = stages_[i].stage->Counters();
  }
  return counters;
}

// --- Runtime: forwards to Impl ---------------------------------------------------

Runtime::Runtime(RuntimeOptions options, std::vector<NamedStage> stages, BatchDone done,
                 RuntimeFailed failed, BatchPartial partial)
    : impl_(std::make_unique<Impl>(options, std::move(stages), std::move(done),
                                   std::move(failed), std::move(partial))) {}

Runtime::~Runtime() = default;

Status Runtime::Start() { return impl_->Start(); }

Status Runtime::Submit(BatchId batch, std::vector<Record> records) {
  return impl_->Submit(batch, std::move(records));
}

Status Runtime::SubmitFrom(BatchId batch, std::size_t count, const RecordSource& next) {
  return impl_->SubmitFrom(batch, count, next);
}

bool Runtime::DropBatch(BatchId batch) { return impl_->DropBatch(batch); }

void Runtime::CloseInput() { impl_->CloseInput(); }

RuntimeProgress Runtime::Progress() const { return impl_->Progress(); }

Status Runtime::error() const { return impl_->error(); }

void Runtime::Finish() { impl_->Finish(); }

void Runtime::Abort() { impl_->Abort(); }

std::size_t Runtime::batches_in_flight() const { return impl_->batches_in_flight(); }

std::vector<StageCounters> Runtime::Counters() const { return impl_->Counters(); }

}  // namespace sluice
