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

#include <algorithm>
#include <atomic>
#include <cassert>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <system_error>
#include <thread>
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
  Impl(RuntimeOptions options, std::vector<NamedStage> stages, BatchDone done);
  ~Impl() override;

  Status Start();
  bool Submit(BatchId batch, std::vector<Record> records);
  void Finish();
  void Abort();
  std::size_t batches_in_flight() const;
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

  // Wakes every thread so that it sees stopping_ / aborted_. mu_ held.
  void WakeAll();
  void JoinThreads();

  const RuntimeOptions options_;
  const BatchDone done_;
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
  bool started_ = false;                     // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_: no more work will come
  // Written under mu_; also read without it by the collector between callbacks.
  std::atomic<bool> aborted_{false};
  std::size_t idle_pool_threads_ = 0;  // guarded by mu_
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
                    BatchDone done)
    : options_(options), done_(std::move(done)), stages_(std::move(stages)) {
  assert(!stages_.empty());
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

bool Runtime::Impl::Submit(BatchId batch, std::vector<Record> records) {
  const std::size_t count = records.size();
  std::vector<Chunk> chunks;
  if (count != 0) {
    chunks = SplitIntoChunks(batch, std::move(records), options_.chunk_size);
  }

  std::unique_lock<std::mutex> lock(mu_);
  while (started_ && !stopping_ && batches_in_flight_ >= options_.max_batches_in_flight) {
    source_waiting_ = true;
    source_cv_.wait(lock);
  }
  source_waiting_ = false;
  if (!started_ || stopping_) return false;
  ++batches_in_flight_;
  registrations_.push_back(Registration{batch, count});
  if (count == 0) {
    if (collector_waiting_) collector_cv_.notify_one();
    return true;
  }
  for (Chunk& chunk : chunks) {
    while (!stopping_ && !channels_[0].HasRoom()) {
      source_waiting_ = true;
      source_cv_.wait(lock);
    }
    source_waiting_ = false;
    // Only an abort stops a batch half-way; its records are dropped with it.
    if (stopping_) return false;
    channels_[0].Push(std::move(chunk));
    ChunkPushed(0);
  }
  return true;
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
    lock.unlock();
    const std::size_t failed_before = chunk.failed;
    // A chunk of failed records only has nothing for the stage to do.
    if (failed_before < chunk.size()) {
      cpu_stages_[stage]->Process(chunk.records);
      chunk.failed = CountFailed(chunk.records);
    }
    lock.lock();
    cpu_counters_[stage].records_failed += chunk.failed - failed_before;
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
  std::vector<Chunk> chunks;
  BatchAssembler::Completed done;
  tls_collector_of = this;
  ChunkChannel& sink = channels_.back();
  const std::size_t sink_index = stages_.size();

  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    while (!stopping_ && sink.empty() && registrations_.empty()) {
      collector_waiting_ = true;
      collector_cv_.wait(lock);
    }
    collector_waiting_ = false;
    if (aborted_) break;
    if (stopping_ && sink.empty() && registrations_.empty()) break;
    // Registrations first: a batch's chunks never overtake its registration, as
    // Submit() registers before it pushes.
    registrations.swap(registrations_);
    while (!sink.empty()) {
      chunks.push_back(sink.Pop());
      ChunkPopped(sink_index);
    }
    lock.unlock();

    for (const Registration& registration : registrations) {
      assembler.Expect(registration.batch, registration.records, &done);
    }
    registrations.clear();
    for (Chunk& chunk : chunks) assembler.Add(std::move(chunk), &done);
    chunks.clear();

    std::size_t reported = 0;
    for (auto& [batch, records] : done) {
      if (aborted_.load()) break;  // never report after an abort began
      if (done_) done_(batch, std::move(records));
      ++reported;
    }
    done.clear();

    lock.lock();
    if (reported != 0) {
      batches_in_flight_ -= reported;
      if (source_waiting_) source_cv_.notify_one();
      if (batches_in_flight_ == 0) drained_cv_.notify_all();
    }
  }
}

void Runtime::Impl::Finish() {
  assert(tls_collector_of != this &&
         "Finish() from the BatchDone callback waits forever");
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!started_) return;
    drained_cv_.wait(lock, [this] { return aborted_ || batches_in_flight_ == 0; });
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
    } else {
      c.records_in = cpu_counters_[i].records_in;
      c.records_failed = cpu_counters_[i].records_failed;
    }
  }
  return counters;
}

// --- Runtime: forwards to Impl ---------------------------------------------------

Runtime::Runtime(RuntimeOptions options, std::vector<NamedStage> stages, BatchDone done)
    : impl_(std::make_unique<Impl>(options, std::move(stages), std::move(done))) {}

Runtime::~Runtime() = default;

Status Runtime::Start() { return impl_->Start(); }

bool Runtime::Submit(BatchId batch, std::vector<Record> records) {
  return impl_->Submit(batch, std::move(records));
}

void Runtime::Finish() { impl_->Finish(); }

void Runtime::Abort() { impl_->Abort(); }

std::size_t Runtime::batches_in_flight() const { return impl_->batches_in_flight(); }

std::vector<StageCounters> Runtime::Counters() const { return impl_->Counters(); }

}  // namespace sluice
