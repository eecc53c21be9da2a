// The streaming runtime: runs a chain of stages, or a graph of stages and operators
// (copy, split, shard, merge, join), over batches of records.
//
// Concurrency model (the only one in sluice):
//  - Records travel in chunks (default 256 records) through bounded channels, one
//    channel into each node (a join has one per input; a merge none: its inputs
//    write straight into its reader's channel). Chunks keep synchronisation cheap: a
//    channel operation costs one lock per chunk, not per record.
//  - Operators run on the CPU pool. A copy or a route (split, shard) reserves room in
//    every branch before it takes a chunk, so it never holds records it cannot place.
//    A join takes a chunk from any input that has one whenever its output has room,
//    and keeps the parts of items not complete yet; they are records in flight, so
//    the batch budget bounds them. Every copy is joined and every route merged before
//    the end (CheckGraph()), so each item reaches the end once, and a batch is done
//    when all its records did.
//  - CPU stages share one pool of threads sized to the cores. A pool thread picks a
//    runnable stage (input chunk available and room reserved in its output channel),
//    preferring stages nearer the sink so that the pipeline drains before it fills.
//    Because room is reserved before a chunk is taken, no pool thread ever blocks on
//    a full channel, and the pool cannot deadlock.
//  - Each async stage has its own event loop thread (epoll + timers). It takes
//    chunks while it has fewer than max_in_flight() records started, and hands
//    completed records on in chunks when its output channel has room.
//  - Submit() blocks while max_batches_in_flight batches are inside the runtime: this
//    is the backpressure that reaches the caller's source. A slow stage fills its
//    input channel, then every channel upstream, then the batch budget.
//  - A collector thread counts the records reaching the end of the chain per batch,
//    and calls the BatchDone callback, once per batch, when all of them arrived.
//  - Every record in an async stage has a deadline the runtime owns (see
//    AsyncStage::record_deadline), so every record reaches the collector.
//  - DropBatch() gives a batch up (its lease was lost): its records are freed as
//    they arrive, it is never reported, and it no longer counts as work to finish.
//
// Memory is bounded by max_batches_in_flight * batch size records, whatever the
// input size: a dropped batch keeps its slot until its last record arrived.
#ifndef SLUICE_CORE_RUNTIME_H_
#define SLUICE_CORE_RUNTIME_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "sluice/record.h"
#include "sluice/stage.h"
#include "sluice/status.h"
#include "src/core/metrics.h"

namespace sluice {

struct RuntimeOptions {
  // CPU pool threads; 0 means one per core.
  std::size_t cpu_threads = 0;
  // Records per chunk moved through channels.
  std::size_t chunk_size = 256;
  // Chunks each channel holds before its producer waits.
  std::size_t channel_capacity = 16;
  // Batches inside the runtime at once (open: not yet reported); Submit() blocks
  // beyond this.
  std::size_t max_batches_in_flight = 8;
  // Records submitted and not yet at the end of the chain (what the stages hold);
  // Submit() blocks while a batch would take it beyond this, unless none is in
  // flight. 0: no limit but the batch count. With a record limit, batches whose
  // other records are done do not stop new ones: a few slow records (the web's
  // tail) hold only their own slots, and max_batches_in_flight can be generous.
  std::size_t max_records_in_flight = 0;
};

// The records of a batch, one per call (Runtime::SubmitFrom).
using RecordSource = std::function<Record()>;

// Where a node reads its records from: an earlier node's output port.
struct NodeInput {
  std::size_t node = 0;  // index in the runtime's node list
  std::size_t port = 0;  // which of its outputs (a copy, split or shard has several)
  bool operator==(const NodeInput&) const = default;
};

// What a node that is not a stage does with records (docs/operators.md). The runtime
// runs operators on its CPU pool, like CPU stages.
struct Operator {
  enum class Kind : std::uint8_t {
    kCopy,   // every record to each of `ports` branches
    kRoute,  // each record to the one branch route() picks (split, shard)
    kMerge,  // the records of several inputs into one stream
    kJoin,   // one record per item from its parts, one part per input
  };
  Kind kind = Kind::kCopy;
  std::size_t ports = 1;  // outputs: a copy's or a route's branches; 1 otherwise
  // kRoute: the port (< ports) for a record that has not failed. It may Fail() the
  // record instead (a split none of whose predicates holds): failed records take
  // port 0. Thread-safe: called concurrently.
  std::function<std::size_t(Record&)> route;
  // kJoin: for each input after the first (index = input), the fields its part adds
  // to the joined record, which is the first input's part; [0] is unused. A part that
  // failed fails the item (its reason and error), one that was filtered adds
  // nothing; a first part that failed or was filtered is the item's outcome.
  std::vector<std::vector<std::string>> join_fields;
};

// A node of the pipeline with the name it has there (for metrics and messages):
// a stage, or an operator. Nodes are listed in an order where every node comes after
// the nodes it reads; a chain is a list of stages with no inputs given.
struct NamedStage {
  NamedStage() = default;
  NamedStage(std::string name_, std::unique_ptr<Stage> stage_,
             std::vector<NodeInput> inputs_ = {})
      : name(std::move(name_)), stage(std::move(stage_)), inputs(std::move(inputs_)) {}
  NamedStage(std::string name_, std::shared_ptr<const Operator> op_,
             std::vector<NodeInput> inputs_)
      : name(std::move(name_)), inputs(std::move(inputs_)), op(std::move(op_)) {}

  std::string name;
  std::unique_ptr<Stage> stage;  // null for an operator
  // What it reads: empty means the node before it, port 0 (the source for the first
  // node). A merge or join lists two inputs or more; every other node one.
  std::vector<NodeInput> inputs;
  std::shared_ptr<const Operator> op;  // set instead of `stage` for an operator
};

// Called on the collector thread when every record of a batch passed the chain.
// `records` holds them all (in no particular order). The callback may block (it
// commits to the store); the runtime's input slot for the batch is freed only after
// it returns.
using BatchDone = std::function<void(BatchId batch, std::vector<Record> records)>;

// Called on the collector thread with records that reached the end while their
// batch still waits for others, so that the owner can take what they carry out of
// memory (write it to disk, drop what nothing needs) while the batch waits. The
// records stay the runtime's, and come back whole with BatchDone.
using BatchPartial = std::function<void(BatchId batch, std::span<Record> records)>;

// Called once, from whichever runtime thread found it, when the runtime cannot go on
// (a stage reported that it cannot work at all, or a bug broke a batch's count). The
// runtime is aborted by then: nothing more is reported.
using RuntimeFailed = std::function<void(const Status& error)>;

// Per-stage counters, readable while the runtime runs: one per stage and operator,
// merges aside (they do no work of their own).
struct StageCounters {
  std::string name;
  std::uint64_t records_in = 0;
  std::uint64_t records_failed = 0;     // records this stage marked failed
  std::size_t queued_chunks = 0;        // chunks waiting in its input channel
  std::size_t in_flight = 0;            // async stages: records started, not completed
  std::uint64_t records_abandoned = 0;  // async stages: failed at their deadline
  std::string waiting_for;  // async stages: what the records in flight wait for
  // The stage's own named counters (Stage::Counters()), e.g. a cache's hits.
  std::vector<std::pair<std::string, std::uint64_t>> own;
  // Time per record in the stage: CPU stages, a chunk's time shared by its records;
  // async stages, from Start() to Complete().
  SecondsHistogram seconds;
  bool async = false;  // an async stage (its seconds are waiting, not CPU)
};

// Where the records are, readable while the runtime runs.
struct RuntimeProgress {
  std::size_t batches_in_flight = 0;    // submitted, not reported (dropped included)
  std::size_t batches_dropped = 0;      // of those, dropped and still draining
  std::uint64_t records_in_flight = 0;  // of live batches: submitted, not arrived
  std::uint64_t records_draining = 0;   // of dropped batches, not arrived yet
  std::uint64_t records_done = 0;       // arrived at the end of the chain (live)
  // Grows whenever a record enters a stage, leaves an async stage or reaches the
  // end: unchanged means nothing moved.
  std::uint64_t movements = 0;
  // The CPU pool's threads, and of those the ones not waiting for work now (running a
  // chunk, or about to): a gauge, sampled when read.
  std::size_t pool_threads = 0;
  std::size_t pool_threads_busy = 0;
};

// Thread-safety: Submit(), Finish() and Abort() may be called from any one thread
// (the source); Counters() from any thread.
class Runtime {
 public:
  // `stages`: the nodes, a chain of stages or a graph (see NamedStage). REQUIRES: they
  // are not empty, and form a graph CheckGraph() accepts (else Start() fails with its
  // errors; a graph it refuses could hang or miscount batches).
  Runtime(RuntimeOptions options, std::vector<NamedStage> stages, BatchDone done,
          RuntimeFailed failed = {}, BatchPartial partial = {});
  ~Runtime();  // Aborts if still running.

  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Starts the pool, loop and collector threads.
  Status Start();

  // Feeds one batch. Blocks while the batch budget is full, and while an earlier
  // submission of the same batch, dropped, still has records on their way. An empty
  // batch is reported done at once (from the collector thread). Errors, the batch
  // not taken: kCancelled once Abort() was called (or after Finish(), or before
  // Start()), the runtime's failure if it failed, and kInternal for a batch that is
  // in flight already (REQUIRES: `batch` is not in flight, checked). Item ids are
  // unique among the records in flight: an async stage finds a completed record's
  // batch by its id, and fails (reason "internal") a record whose id is in flight
  // from another batch.
  Status Submit(BatchId batch, std::vector<Record> records);

  // Submit() for records made one by one as the stages take them (a batch read from
  // a stream): `next` is called `count` times, from this thread and without the
  // runtime's lock, each time once the first channel has room for the chunk it goes
  // in, so that what is read waits in no queue of its own. `next` must not fail: a
  // record it cannot make is given as a failed one (what the caller then does with
  // the batch is its business). Errors as Submit(); after kCancelled (an abort),
  // `next` is not called again.
  Status SubmitFrom(BatchId batch, std::size_t count, const RecordSource& next);

  // Submit() takes no new batch from now on, and a Submit() waiting for room
  // returns kCancelled; batches already submitted go on. Thread-safe.
  void CloseInput();

  // Gives up `batch`: it will not be reported, its records are freed as they reach
  // the end (CPU stages skip them), and it no longer counts as work left. Returns
  // false if the batch is not in flight (reported already, or never submitted), or
  // dropped already. Thread-safe.
  bool DropBatch(BatchId batch);

  // Declares that no more batches come, waits until every live submitted batch was
  // reported done (dropped ones are not waited for: their records are discarded),
  // and stops the threads. Returns early if Abort() is called.
  // REQUIRES: not called from the BatchDone callback (it would wait for itself).
  void Finish();

  // Stops as soon as possible: stages stop taking work, records in flight are
  // dropped, and batches not yet reported are never reported. Returns after every
  // thread stopped (after a BatchDone callback under way returned). Safe to call
  // from another thread while Submit() or Finish() blocks. Called from inside the
  // BatchDone callback, it only requests the stop and returns at once; Finish(),
  // Abort() or the destructor, called from outside, then waits for the threads.
  void Abort();

  // Batches submitted and not yet reported done (or drained, if dropped).
  std::size_t batches_in_flight() const;

  RuntimeProgress Progress() const;
  // The failure that stopped the runtime (see RuntimeFailed); OK if none.
  Status error() const;

  std::vector<StageCounters> Counters() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice

#endif  // SLUICE_CORE_RUNTIME_H_
