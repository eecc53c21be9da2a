// The runtime's moving parts, all around one mutex (mu_):
//
//   Submit() --chunks--> channel --> node --> channel --> node ... --> sink channel
//                                                                          |
//                                            collector thread <------------+
//
// Each node has one input channel (a join one per input; a merge none: its inputs
// write into the channel of the node that reads the merge), and writes one channel
// per output port, the input channel of the node reading that port. A chain of n
// stages has n + 1 channels. Every channel, the batch budget and the wake-up flags
// are guarded by mu_. The lock is taken once per chunk per hop, never per record;
// the work on records (stage calls, operators, moving records into their batch) runs
// outside it. Whoever pushes or pops a chunk calls ChunkPushed() or ChunkPopped(),
// which wakes the party on the other side only if it sleeps waiting for exactly
// that, so that the common case costs no system call.
//
// A pool thread finishing CPU stage s hands its chunk straight to the stage reading
// it (when that is a CPU stage with nothing queued and room in its output) instead
// of queueing it: one lock per hop, and the chunk stays in the thread's cache.
//
// A join's state (the parts of items not complete yet) is touched by one pool thread
// at a time: the node is marked busy while a thread works on it.
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
#include "src/core/graph_check.h"

namespace sluice {
namespace {

constexpr std::size_t kNoStage = std::numeric_limits<std::size_t>::max();
// ChannelEnds::consumer of the sink channel; the source is kSourceNode.
constexpr std::size_t kCollectorNode = kSourceNode - 1;

// A join's part of an item: moves `part` into `joined` as the join's rules say
// (Operator::join_fields).
void JoinPart(Record& joined, const Record& part, const std::vector<std::string>& fields) {
  if (part.failed()) {
    if (part.reason() != FailureReason::kFiltered && !joined.failed()) {
      joined.Fail(part.reason(), part.error());
    }
    return;
  }
  if (joined.failed()) return;
  for (const std::string& field : fields) {
    if (const Value* value = part.Find(field)) joined.Set(field, *value);
  }
}

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
  enum class Role : std::uint8_t { kCpuStage, kAsyncStage, kCopy, kRoute, kMerge, kJoin };
  // The parts of the items a join has seen some of. When only CPU stages stand
  // between the copy and the join, which change records in place and never reshape
  // a chunk, each copy of a chunk arrives whole: the join pairs chunks by their first
  // item (`chunks`) and zips them, with no per-record lookup. Otherwise it pairs
  // records by item (`pending`).
  struct JoinState {
    struct Pending {
      BatchId batch = 0;
      std::size_t arrived = 0;
      std::vector<Record> parts;  // by input
      std::vector<bool> have;
    };
    struct PendingChunk {
      std::size_t arrived = 0;
      std::vector<Chunk> parts;  // by input
      std::vector<bool> have;
    };
    bool aligned = false;
    std::unordered_map<ItemId, Pending> pending;
    std::unordered_map<ItemId, PendingChunk> chunks;
  };
  struct Node {
    Role role = Role::kCpuStage;
    std::vector<std::size_t> in;   // channels it takes chunks from (merge: none)
    std::vector<std::size_t> out;  // the channel of each output port
    // The distinct channels of `out`, and how many ports write each (the branches of
    // a route may all go straight into the merge after it).
    std::vector<std::pair<std::size_t, std::size_t>> out_slots;
    CpuStage* cpu = nullptr;       // kCpuStage
    const Operator* op = nullptr;  // operators
    bool busy = false;             // kJoin: a pool thread holds its state (mu_)
    std::size_t next_input = 0;    // kJoin: where the next look for input starts (mu_)
    std::unique_ptr<JoinState> join;  // kJoin: touched only by the thread holding it
  };
  // Who reads and who writes a channel: node indices, kSourceNode, kCollectorNode.
  struct ChannelEnds {
    std::size_t consumer = kNoStage;
    std::vector<std::size_t> producers;
  };
  // A chunk a pool thread took, and what it makes of it.
  struct PoolWork {
    std::size_t node = kNoStage;
    Chunk chunk;
    std::size_t input = 0;     // kJoin: the input it came from
    std::vector<Chunk> outs;   // operators: the chunk for each output port
    Status broken;             // kJoin: a part that cannot be (a bug upstream)
  };

  // Lays out nodes_ and the channels from stages_; on a graph CheckGraph() refuses,
  // sets graph_error_ instead.
  void Wire();
  // True if only CPU stages stand between join `join` and the copy it closes, so
  // that every chunk the copy sent reaches the join whole, on each input.
  bool ChunksStayWhole(const std::vector<GraphShape>& shapes, std::size_t join) const;
  // A join's work on a chunk: by chunk when they stay whole, else by record.
  void JoinChunks(PoolWork& work);
  void JoinRecords(PoolWork& work);
  bool IsPoolNode(std::size_t node) const {
    const Role role = nodes_[node].role;
    return role != Role::kAsyncStage && role != Role::kMerge;
  }
  // True if pool node `node` has input and room in every output. mu_ held.
  bool PoolRunnable(std::size_t node) const;
  void WakeOnePoolThread() {
    if (idle_pool_threads_ > 0) pool_cv_.notify_one();
  }

  void PoolThread();
  // Takes a chunk for the runnable pool node nearest the sink, reserving room in
  // its outputs. Returns false if none is runnable. mu_ held.
  bool TakePoolWork(PoolWork* work);
  // Does the work on a chunk taken; mu_ not held.
  void RunPoolWork(PoolWork& work);
  // Passes on what a pool node made; a chunk may go straight to the CPU stage
  // reading it, which `work` then holds (returns true). mu_ held.
  bool DeliverPoolWork(PoolWork* work);
  // Gives `chunk`, bound for `channel` (a slot reserved), to the CPU stage reading
  // it, in `work`, when that stage has nothing queued and room for its output.
  // Returns false, changing nothing, otherwise. mu_ held.
  bool HandOff(std::size_t channel, Chunk* chunk, PoolWork* work);

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
  std::vector<std::unique_ptr<AsyncStageRunner>> runners_;  // null but for async stages
  std::vector<NamedStage> stages_;
  std::vector<Node> nodes_;  // one per stage; the layout is fixed once built
  std::vector<ChannelEnds> ends_;  // per channel; fixed once built
  std::size_t source_channel_ = 0;  // where Submit() pushes
  std::size_t sink_channel_ = 0;    // what the collector reads
  Status graph_error_;              // why Start() refuses the graph

  mutable std::mutex mu_;
  // Guarded by mu_ (the vector itself is fixed once built).
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
  cpu_counters_.resize(stages_.size());
  Wire();
}

void Runtime::Impl::Wire() {
  std::vector<std::string> problems;
  for (const NamedStage& named : stages_) {
    if ((named.stage == nullptr) == (named.op == nullptr)) {
      problems.push_back(named.name + ": a node is either a stage or an operator");
    } else if (named.op != nullptr && named.op->kind == Operator::Kind::kRoute &&
               !named.op->route) {
      problems.push_back(named.name + ": a route without its function");
    } else if (named.op != nullptr && named.op->kind == Operator::Kind::kJoin &&
               named.op->join_fields.size() != named.inputs.size()) {
      problems.push_back(named.name + ": a join needs the fields of each input");
    }
  }
  const std::vector<GraphShape> shapes = ShapesOf(stages_);
  if (stages_.empty()) problems.push_back("no stages");
  if (problems.empty()) {
    for (const GraphError& error : CheckGraph(shapes)) {
      problems.push_back(shapes[error.node].name + ": " + error.message);
    }
  }
  if (!problems.empty()) {
    graph_error_ =
        InvalidArgument(fmt::format("runtime: {}", fmt::join(problems, "; ")));
    return;
  }
  nodes_.resize(stages_.size());
  std::vector<std::vector<std::size_t>> port_channel(stages_.size());
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    Node& node = nodes_[i];
    const NamedStage& named = stages_[i];
    port_channel[i].assign(shapes[i].ports, kNoStage);
    if (named.op == nullptr) {
      node.role = named.stage->kind() == Stage::Kind::kCpu ? Role::kCpuStage
                                                           : Role::kAsyncStage;
      if (node.role == Role::kCpuStage) node.cpu = static_cast<CpuStage*>(named.stage.get());
      continue;
    }
    node.op = named.op.get();
    switch (named.op->kind) {
      case Operator::Kind::kCopy:
        node.role = Role::kCopy;
        break;
      case Operator::Kind::kRoute:
        node.role = Role::kRoute;
        break;
      case Operator::Kind::kMerge:
        node.role = Role::kMerge;
        break;
      case Operator::Kind::kJoin:
        node.role = Role::kJoin;
        node.join = std::make_unique<JoinState>();
        node.join->aligned = ChunksStayWhole(shapes, i);
        break;
    }
  }
  // From the end back: a node's input channels exist before the nodes it reads are
  // wired, since they come before it.
  auto new_channel = [&] {
    ends_.emplace_back();
    return ends_.size() - 1;
  };
  sink_channel_ = new_channel();
  ends_[sink_channel_].consumer = kCollectorNode;
  port_channel.back()[0] = sink_channel_;
  auto feed = [&](const NodeInput& input, std::size_t channel) {
    if (input.node == kSourceNode) {
      source_channel_ = channel;
      ends_[channel].producers.push_back(kSourceNode);
    } else {
      port_channel[input.node][input.port] = channel;
    }
  };
  for (std::size_t i = stages_.size(); i-- > 0;) {
    Node& node = nodes_[i];
    if (node.role == Role::kMerge) {
      for (const NodeInput& input : shapes[i].inputs) feed(input, port_channel[i][0]);
      continue;
    }
    for (const NodeInput& input : shapes[i].inputs) {
      const std::size_t channel = new_channel();
      ends_[channel].consumer = i;
      node.in.push_back(channel);
      feed(input, channel);
    }
  }
  // A channel holds at least as many chunks as one node may put in it at once.
  std::vector<std::size_t> capacity(ends_.size(),
                                    std::max<std::size_t>(options_.channel_capacity, 1));
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    Node& node = nodes_[i];
    if (node.role == Role::kMerge) continue;
    node.out = port_channel[i];
    for (std::size_t channel : node.out) {
      auto slot = std::find_if(node.out_slots.begin(), node.out_slots.end(),
                               [&](const auto& entry) { return entry.first == channel; });
      if (slot == node.out_slots.end()) {
        ends_[channel].producers.push_back(i);
        node.out_slots.emplace_back(channel, 1);
      } else {
        capacity[channel] = std::max(capacity[channel], ++slot->second);
      }
    }
  }
  channels_.reserve(ends_.size());
  for (std::size_t i = 0; i < ends_.size(); ++i) channels_.emplace_back(capacity[i]);
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
  if (!graph_error_.ok()) return graph_error_;
  if (options_.chunk_size == 0 || options_.channel_capacity == 0 ||
      options_.max_batches_in_flight == 0) {
    return InvalidArgument(
        "runtime: chunk_size, channel_capacity and max_batches_in_flight must be >= 1");
  }
  bool has_cpu_stage = false;
  std::vector<std::unique_ptr<AsyncStageRunner>> runners(stages_.size());
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    if (nodes_[i].role == Role::kMerge) continue;
    if (IsPoolNode(i)) {
      has_cpu_stage = true;
      continue;
    }
    if (static_cast<AsyncStage&>(*stages_[i].stage).max_in_flight() == 0) {
      return InvalidArgument("runtime: stage " + stages_[i].name +
                             ": max_in_flight() is 0, it could never start a record");
    }
    AsyncStageRunner::Wiring wiring;
    wiring.name = stages_[i].name;
    wiring.input_channel = nodes_[i].in[0];
    wiring.output_channel = nodes_[i].out[0];
    wiring.chunk_size = options_.chunk_size;
    wiring.mu = &mu_;
    wiring.input = &channels_[wiring.input_channel];
    wiring.output = &channels_[wiring.output_channel];
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
    channels_[source_channel_].Push(std::move(chunk));
    ChunkPushed(source_channel_);
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
    channels_[source_channel_].Push(std::move(chunk));
    ChunkPushed(source_channel_);
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
  while (!stopping_ && !channels_[source_channel_].HasRoom()) {
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
  const std::size_t consumer = ends_[channel].consumer;
  if (consumer == kCollectorNode) {
    if (collector_waiting_) collector_cv_.notify_one();
  } else if (nodes_[consumer].role == Role::kAsyncStage) {
    runners_[consumer]->InputPushed();
  } else if (PoolRunnable(consumer)) {
    WakeOnePoolThread();
  }
}

void Runtime::Impl::ChunkPopped(std::size_t channel) {
  for (std::size_t producer : ends_[channel].producers) {
    if (producer == kSourceNode) {
      if (source_waiting_) source_cv_.notify_one();
    } else if (nodes_[producer].role == Role::kAsyncStage) {
      runners_[producer]->OutputPopped();
    } else if (PoolRunnable(producer)) {
      WakeOnePoolThread();
    }
  }
}

bool Runtime::Impl::PoolRunnable(std::size_t index) const {
  const Node& node = nodes_[index];
  auto outputs_have_room = [&] {
    return std::all_of(node.out_slots.begin(), node.out_slots.end(), [&](const auto& slot) {
      return channels_[slot.first].HasRoomFor(slot.second);
    });
  };
  switch (node.role) {
    case Role::kCpuStage:
    case Role::kCopy:
    case Role::kRoute:
      return !channels_[node.in[0]].empty() && outputs_have_room();
    case Role::kJoin:
      return !node.busy && outputs_have_room() &&
             std::any_of(node.in.begin(), node.in.end(),
                         [&](std::size_t channel) { return !channels_[channel].empty(); });
    case Role::kAsyncStage:
    case Role::kMerge:
      return false;
  }
  return false;
}

void Runtime::Impl::PoolThread() {
  std::unique_lock<std::mutex> lock(mu_);
  PoolWork work;
  bool have_work = false;
  for (;;) {
    if (stopping_) break;  // an unfinished chunk is dropped: only abort stops early
    if (!have_work) have_work = TakePoolWork(&work);
    if (!have_work) {
      ++idle_pool_threads_;
      pool_cv_.wait(lock);
      --idle_pool_threads_;
      continue;
    }
    // A chunk of failed records only, or of dropped batches only, has nothing for
    // a stage to do (operators still route it: its records must reach the end).
    const Role role = nodes_[work.node].role;
    const bool skip = role == Role::kCpuStage && AllDropped(work.chunk);
    lock.unlock();
    const std::size_t failed_before = work.chunk.failed;
    const std::size_t size = work.chunk.size();
    double seconds = -1;
    std::size_t failed_after = failed_before;
    if (role != Role::kCpuStage || (!skip && failed_before < size)) {
      const auto started = std::chrono::steady_clock::now();
      RunPoolWork(work);
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
                    .count();
      if (role == Role::kCpuStage) {
        failed_after = work.chunk.failed;
      } else if (role == Role::kRoute) {
        failed_after = 0;
        for (const Chunk& out : work.outs) failed_after += out.failed;
      }
    }
    lock.lock();
    CpuCounters& counters = cpu_counters_[work.node];
    counters.records_failed += failed_after - std::min(failed_after, failed_before);
    if (seconds >= 0) {
      // A stage's time is shared by the records it worked on (the failed ones
      // skipped it); an operator's by all.
      const std::size_t worked = role == Role::kCpuStage ? size - failed_before : size;
      if (worked != 0) {
        counters.seconds.Observe(seconds / static_cast<double>(worked), worked);
      }
    }
    if (!work.broken.ok()) {
      const Status broken = work.broken;
      lock.unlock();
      Fail(broken);
      lock.lock();
      break;
    }
    have_work = DeliverPoolWork(&work);
  }
}

bool Runtime::Impl::TakePoolWork(PoolWork* work) {
  for (std::size_t index = nodes_.size(); index-- > 0;) {
    if (!IsPoolNode(index) || !PoolRunnable(index)) continue;
    Node& node = nodes_[index];
    std::size_t input = 0;
    if (node.role == Role::kJoin) {
      for (std::size_t k = 0; k < node.in.size(); ++k) {
        input = (node.next_input + k) % node.in.size();
        if (!channels_[node.in[input]].empty()) break;
      }
      node.next_input = (input + 1) % node.in.size();
      node.busy = true;
    }
    work->node = index;
    work->input = input;
    work->chunk = channels_[node.in[input]].Pop();
    for (std::size_t channel : node.out) channels_[channel].Reserve();
    cpu_counters_[index].records_in += work->chunk.size();
    ChunkPopped(node.in[input]);
    return true;
  }
  return false;
}

void Runtime::Impl::RunPoolWork(PoolWork& work) {
  Node& node = nodes_[work.node];
  Chunk& chunk = work.chunk;
  switch (node.role) {
    case Role::kCpuStage:
      node.cpu->Process(chunk.records);
      chunk.failed = CountFailed(chunk.records);
      return;
    case Role::kCopy: {
      work.outs.resize(node.out.size());
      for (std::size_t port = 1; port < node.out.size(); ++port) work.outs[port] = chunk;
      work.outs[0] = std::move(chunk);
      return;
    }
    case Role::kRoute: {
      work.outs.resize(node.out.size());
      const std::size_t ports = node.out.size();
      std::size_t index = 0;
      for (const BatchRun& run : chunk.runs) {
        for (std::size_t i = 0; i < run.count; ++i, ++index) {
          Record& record = chunk.records[index];
          std::size_t port = 0;
          if (!record.failed()) {
            port = node.op->route(record);
            if (record.failed()) {
              port = 0;
            } else if (port >= ports) {
              record.Fail(FailureReason::kInternal,
                          fmt::format("route picked branch {} of {}", port, ports));
              port = 0;
            }
          }
          work.outs[port].Append(run.batch, std::move(record));
        }
      }
      return;
    }
    case Role::kJoin:
      if (node.join->aligned) {
        JoinChunks(work);
      } else {
        JoinRecords(work);
      }
      work.chunk = Chunk{};
      return;
    case Role::kAsyncStage:
    case Role::kMerge:
      return;
  }
}

bool Runtime::Impl::ChunksStayWhole(const std::vector<GraphShape>& shapes,
                                    std::size_t join) const {
  std::size_t fork = kNoStage;
  for (const NodeInput& input : shapes[join].inputs) {
    std::size_t at = input.node;
    while (at != kSourceNode && stages_[at].op == nullptr &&
           stages_[at].stage->kind() == Stage::Kind::kCpu) {
      at = shapes[at].inputs[0].node;
    }
    if (at == kSourceNode || stages_[at].op == nullptr ||
        stages_[at].op->kind != Operator::Kind::kCopy || (fork != kNoStage && at != fork)) {
      return false;
    }
    fork = at;
  }
  return fork != kNoStage;
}

void Runtime::Impl::JoinChunks(PoolWork& work) {
  Node& node = nodes_[work.node];
  JoinState& state = *node.join;
  const std::size_t parts = node.in.size();
  if (work.chunk.empty()) return;
  const ItemId first = work.chunk.records.front().id();
  auto [it, inserted] = state.chunks.try_emplace(first);
  JoinState::PendingChunk& pending = it->second;
  if (inserted) {
    pending.parts.resize(parts);
    pending.have.assign(parts, false);
  } else if (pending.have[work.input]) {
    work.broken = Internal(fmt::format(
        "runtime: join {}: the chunk of item {} came twice from input {} (a stage "
        "duplicated records)",
        stages_[work.node].name, first, work.input));
    return;
  }
  pending.parts[work.input] = std::move(work.chunk);
  pending.have[work.input] = true;
  if (++pending.arrived < parts) return;
  Chunk joined = std::move(pending.parts[0]);
  for (std::size_t k = 1; k < parts; ++k) {
    const Chunk& part = pending.parts[k];
    bool same = part.size() == joined.size() && part.runs.size() == joined.runs.size();
    for (std::size_t i = 0; same && i < part.size(); ++i) {
      same = part.records[i].id() == joined.records[i].id();
    }
    if (!same) {
      work.broken = Internal(fmt::format(
          "runtime: join {}: the copies of the chunk of item {} differ (a CPU stage "
          "added or removed records)",
          stages_[work.node].name, first));
      return;
    }
    for (std::size_t i = 0; i < part.size(); ++i) {
      JoinPart(joined.records[i], part.records[i], node.op->join_fields[k]);
    }
  }
  joined.failed = CountFailed(joined.records);
  state.chunks.erase(it);
  work.outs.push_back(std::move(joined));
}

void Runtime::Impl::JoinRecords(PoolWork& work) {
  Node& node = nodes_[work.node];
  JoinState& state = *node.join;
  const std::size_t parts = node.in.size();
  Chunk& joined = work.outs.emplace_back();
  std::size_t index = 0;
  for (const BatchRun& run : work.chunk.runs) {
    for (std::size_t i = 0; i < run.count; ++i, ++index) {
      Record& record = work.chunk.records[index];
      auto [it, inserted] = state.pending.try_emplace(record.id());
      JoinState::Pending& pending = it->second;
      if (inserted) {
        pending.batch = run.batch;
        pending.parts.resize(parts);
        pending.have.assign(parts, false);
      } else if (pending.batch != run.batch || pending.have[work.input]) {
        if (work.broken.ok()) {
          work.broken = Internal(fmt::format(
              "runtime: join {}: item {} came twice from input {} (a stage "
              "duplicated records)",
              stages_[work.node].name, record.id(), work.input));
        }
        continue;
      }
      pending.parts[work.input] = std::move(record);
      pending.have[work.input] = true;
      if (++pending.arrived < parts) continue;
      Record result = std::move(pending.parts[0]);
      for (std::size_t k = 1; k < parts; ++k) {
        JoinPart(result, pending.parts[k], node.op->join_fields[k]);
      }
      joined.Append(run.batch, std::move(result));
      state.pending.erase(it);
    }
  }
}

bool Runtime::Impl::HandOff(std::size_t channel, Chunk* chunk, PoolWork* work) {
  const std::size_t next = ends_[channel].consumer;
  if (next == kCollectorNode || nodes_[next].role != Role::kCpuStage ||
      !channels_[channel].empty() || !channels_[nodes_[next].out[0]].HasRoom()) {
    return false;
  }
  channels_[channel].CancelReservation();
  ChunkPopped(channel);  // the slot given back may let another thread run the producer
  channels_[nodes_[next].out[0]].Reserve();
  cpu_counters_[next].records_in += chunk->size();
  if (chunk != &work->chunk) work->chunk = std::move(*chunk);
  work->node = next;
  return true;
}

bool Runtime::Impl::DeliverPoolWork(PoolWork* work) {
  Node& node = nodes_[work->node];
  if (node.role == Role::kCpuStage) {
    const std::size_t channel = node.out[0];
    if (HandOff(channel, &work->chunk, work)) return true;
    channels_[channel].PushReserved(std::move(work->chunk));
    work->chunk = Chunk{};
    ChunkPushed(channel);
    return false;
  }
  node.busy = false;
  // The thread keeps one output for the CPU stage reading it, as after a stage; the
  // others are queued (and may wake other threads).
  std::vector<Chunk> outs = std::move(work->outs);
  work->outs.clear();
  work->chunk = Chunk{};
  const std::size_t from = work->node;
  bool kept = false;
  for (std::size_t port = 0; port < nodes_[from].out.size(); ++port) {
    const std::size_t channel = nodes_[from].out[port];
    if (port >= outs.size() || outs[port].empty()) {
      channels_[channel].CancelReservation();
      ChunkPopped(channel);
      continue;
    }
    if (!kept && HandOff(channel, &outs[port], work)) {
      kept = true;
      continue;
    }
    channels_[channel].PushReserved(std::move(outs[port]));
    ChunkPushed(channel);
  }
  // Input that reached a join while this thread held it woke no one: if this thread
  // goes on with a stage, another may take the join now.
  if (kept && nodes_[from].role == Role::kJoin && PoolRunnable(from)) WakeOnePoolThread();
  return kept;
}

void Runtime::Impl::CollectorThread() {
  BatchAssembler assembler;
  std::vector<Registration> registrations;
  std::vector<BatchId> drops;
  std::vector<Chunk> chunks;
  std::vector<BatchAssembler::Arrival> arrivals;
  BatchAssembler::Completed done;
  tls_collector_of = this;
  ChunkChannel& sink = channels_[sink_channel_];
  const std::size_t sink_index = sink_channel_;

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
  for (Node& node : nodes_) {
    if (node.join != nullptr) {
      node.join->pending.clear();
      node.join->chunks.clear();
    }
  }
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
    // A merge does nothing of its own: its inputs write into its reader's channel.
    if (stages_[i].op != nullptr && stages_[i].op->kind == Operator::Kind::kMerge) continue;
    StageCounters& c = counters.emplace_back();
    c.name = stages_[i].name;
    if (i < nodes_.size()) {
      for (std::size_t channel : nodes_[i].in) c.queued_chunks += channels_[channel].size();
    }
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
    if (stages_[i].stage != nullptr) c.own = stages_[i].stage->Counters();
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
