// The worker: leases batches from a Store, streams them through a Runtime, and
// commits each batch's results with its lease token.
//
// Threads:
//  - the caller of Run() is the source: it leases up to the batch budget, reads each
//    batch's items and submits them to the runtime;
//  - the runtime's collector thread commits finished batches (CommitBatch checks the
//    token, so a batch whose lease was lost is refused and left to its new owner);
//    when the worker has a BatchOutput, the batch's outputs are staged first and
//    published inside the commit, after the token check (src/core/batch_output.h);
//  - a supervisor thread extends every held lease a few times per lease period, and
//    watches for a stall.
//
// What makes a hang impossible (docs/architecture.md, "Never hangs"):
//  - a batch is held, submitted and assembled at most once: the store never hands a
//    batch to the owner holding it, the worker refuses a lease of a batch it holds,
//    and the runtime refuses a batch that is in flight;
//  - every lease is renewed from the moment it is taken (also while it waits to be
//    submitted); a renewal error is logged once per cause and counted, and a lease
//    the store reports lost is dropped from the runtime at once: its records are
//    discarded, never committed, and never waited for;
//  - every record in an async stage has a deadline (AsyncStage::record_deadline);
//  - if nothing moves (no record through a stage, no batch committed) for
//    `stall_timeout` while work remains, the worker logs what it waits for,
//    releases its leases and ends with WorkerEnd::kStalled;
//  - a busy store (kBusy) is retried with backoff, not fatal; so is an unreachable
//    one (kUnavailable: PostgreSQL restarted, the network cut), for as long as it
//    takes, and the stall watchdog waits meanwhile: the wait is the store's, not a
//    stage's. A commit cut off that way is retried with the same lease (the store
//    accepts it once, see Store::CommitBatch); leases that expired during the
//    outage and were taken over are found by the next renewal and dropped.
//
// Stage groups (a pipeline split by function, docs/cluster.md): a worker runs one
// group's stages. When a group follows (`has_next_group`), each batch's records, as
// they leave the group's last stage, are written to the blob store under a name that
// carries the lease token, before the commit: the commit's token is what makes that
// payload the valid one, so a late writer can never replace it. When a group precedes
// (`previous_group`), a leased batch's records are read from the payload the previous
// group's commit made valid (Store::CommittedToken), and once this group commits, the
// batch's payloads are removed; at start, payloads of dead attempts and of batches
// already done here are collected.
//
// Stopping: RequestStop() stops leasing (also a source blocked on the budget) and
// gives the batches in flight up to `grace` to finish and commit; then the rest are
// aborted and their leases released, so another run can take them at once. Abort()
// does that immediately. Either way, what was committed stays committed, and a later
// run resumes from the store.
#ifndef SLUICE_CORE_WORKER_H_
#define SLUICE_CORE_WORKER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/stage.h"
#include "sluice/store.h"
#include "src/core/batch_output.h"
#include "src/core/blob_store.h"
#include "src/core/metrics.h"
#include "src/core/owner_id.h"
#include "src/core/runtime.h"

namespace sluice {

// Where the worker's warnings go (one line each, without a trailing newline).
using WorkerLog = std::function<void(std::string_view line)>;

struct WorkerOptions {
  std::string group = "main";  // stage group whose batches to lease
  // Which of the group's batches to lease (all by default; `--partition K/N`). With
  // exit_when_done, the worker still ends only once the whole group is done.
  LeasePartition partition;
  std::string owner;                       // unique worker id (see OwnerId())
  std::chrono::milliseconds lease{60000};  // lease duration; renewed every third
  std::size_t max_batches_in_flight = 8;   // batches leased and not committed
  // Records leased and not yet through the pipeline; 0: only the batch count
  // limits. With it, a batch waiting for a few slow records holds only their
  // slots, so that max_batches_in_flight can be generous (see Runtime).
  std::size_t max_records_in_flight = 0;
  // Bytes that finished records of waiting batches may keep in memory for their
  // outputs; beyond it they go to disk (BatchOutput::Spill).
  std::uint64_t max_held_bytes = 256ull << 20;
  std::chrono::milliseconds grace{30000};    // time in-flight batches get on stop
  std::chrono::milliseconds idle_poll{250};  // how often to look again when idle
  // Whether Run() returns once the group has no pending or leased batch
  // (WorkerEnd::kFinished); false: it keeps looking for new batches (another
  // process may ingest more) until Stop().
  bool exit_when_done = true;
  // How long nothing may move while work remains before the worker gives up
  // (WorkerEnd::kStalled). 0: the longest record deadline of the async stages plus
  // kStallMargin (at least kStallMargin).
  std::chrono::milliseconds stall_timeout{0};
  // Longest wait between two tries of a store call that failed with kBusy.
  std::chrono::milliseconds busy_backoff_max{2000};
  // Longest wait between two tries of a store call that failed with kUnavailable.
  std::chrono::milliseconds unavailable_backoff_max{5000};
  WorkerLog log;           // warnings; null: "sluice: LINE" on stderr
  RuntimeOptions runtime;  // max_batches_in_flight is set from above

  // Stage groups (see the top of the file). The group before this one ("": this is
  // the first, its records come from the items), whether one follows (its records
  // then go to `blobs`, and the worker writes no outputs), where payloads travel
  // (required with either), and the decoders of the payloads read.
  std::string previous_group;
  bool has_next_group = false;
  // How often the worker reports itself to the store (Store::ReportWorker), for
  // `sluice status`; 0: never.
  std::chrono::milliseconds report_every{5000};
  BlobStore* blobs = nullptr;
  const StageRegistry* payload_decoders = nullptr;
  // With a previous group: how often payloads nobody reads any more (of dead
  // attempts, of unfinished writes an hour old) are collected, besides at start.
  // 0: only at start.
  std::chrono::milliseconds collect_every{600000};
};

// Added to the longest record deadline for the default stall timeout.
inline constexpr std::chrono::milliseconds kStallMargin{60000};

// Progress counters, readable from any thread while the worker runs.
struct WorkerProgress {
  std::uint64_t batches_committed = 0;
  std::uint64_t items_committed = 0;
  std::uint64_t items_failed = 0;
  std::uint64_t items_filtered = 0;  // of those, dropped by a filter (not failed)
  // Batches given up because their lease was lost: found by a renewal (their
  // records dropped) or by a refused commit.
  std::uint64_t batches_lost = 0;
  std::uint64_t renew_errors = 0;         // renewals that failed (the store's error)
  std::uint64_t busy_retries = 0;         // store calls retried after kBusy
  std::uint64_t unavailable_retries = 0;  // store calls retried after kUnavailable
  std::uint64_t held_bytes = 0;  // kept in memory by finished records of waiting batches
  std::uint64_t payload_bytes = 0;    // written to the blob store for the next group
  // Batches whose payload from the previous group was lost or damaged, given back to
  // be redone from the first group (Store::RedoFromFirstGroup).
  std::uint64_t batches_redone = 0;
  std::uint64_t spilled_records = 0;  // finished records whose bytes went to disk
  std::size_t batches_in_flight = 0;  // leases held
  // How long the oldest held batch has been held (ms; 0 with none).
  std::int64_t oldest_batch_ms = 0;
  // Items committed failed, by reason name.
  std::map<std::string, std::uint64_t> failures;
  // How long store calls took, by call ("lease", "read batch", "commit", "renew"),
  // retries after kBusy or kUnavailable included.
  std::map<std::string, SecondsHistogram> store_seconds;
  // True while a store call waits for an unreachable store (kUnavailable).
  bool store_unreachable = false;
  // From the runtime: records of held batches not yet through the pipeline, and
  // records through it (done, committed or not yet).
  std::uint64_t records_in_flight = 0;
  std::uint64_t records_done = 0;
  // From the runtime: its CPU pool's threads, and those busy now.
  std::size_t pool_threads = 0;
  std::size_t pool_threads_busy = 0;
};

// How a Run() ended.
enum class WorkerEnd {
  kFinished,  // no batch of the group is left to do
  kStopped,   // RequestStop() or Abort(): work remains for a later run
  kStalled,   // nothing moved for stall_timeout: leases released, work remains
};

// Thread-safety: Run() once, from one thread; RequestStop(), Abort() and Progress()
// from any thread. `store`, and `output` when not null, must outlive the worker.
class Worker {
 public:
  // `output`: where each batch's files are written before its commit; nullptr for
  // none (results go only to the store).
  Worker(Store& store, WorkerOptions options, std::vector<NamedStage> stages,
         BatchOutput* output = nullptr);
  ~Worker();

  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Processes batches until none is left, a stop is requested, or it stalls.
  // Returns an error if the store or a stage fails (other than a lost lease, which
  // is routine). Called twice, the second call fails.
  Result<WorkerEnd> Run();

  void RequestStop();
  void Abort();

  WorkerProgress Progress() const;
  // The stages' counters: live while Run() runs, as they ended after it.
  std::vector<StageCounters> StageProgress() const;
  // What the worker waits for, in a few lines (the stall report).
  std::string Describe() const;

 private:
  // With a next group: the payload of a batch being written, from the records
  // Partial() saw finish (encoded and appended as they come, so that they wait on
  // disk, not in memory), and their ids.
  struct EncodedPart {
    std::unique_ptr<BlobStore::Writer> writer;
    std::set<ItemId> ids;
    std::uint64_t bytes = 0;
  };
  struct Held {
    Lease lease;
    bool committing = false;  // the collector is writing it: renewal leaves it alone
    // When its items were read to be handed to the stages (FinishedBatch::started).
    std::chrono::system_clock::time_point started;
  };

  void Commit(BatchId batch, std::vector<Record> records);
  // Feeds `lease`'s batch to `runtime`: its items without a result (first group),
  // or those records from the previous group's payload, read as the stages take
  // them. A payload that is not there is redone (RedoBatch; kStaleLease: not
  // submitted, not held any more); one found damaged half-way fails the rest of the
  // batch's records, and Commit() redoes the batch instead of committing it.
  // Errors: the batch is not in the runtime. Source thread.
  Status SubmitBatch(Runtime& runtime, const Lease& lease);
  // Gives `lease`'s batch back to be redone from the first group, its payload lost
  // or damaged (`why`), with a warning. Ok when done; the store's error otherwise
  // (kStaleLease: the lease was lost meanwhile, and the batch is someone else's).
  Status RedoBatch(const Lease& lease, const Status& why);
  // The payload of `records` (and of those Partial() encoded) for the next group,
  // written under the lease's name. Collector thread.
  Status WritePayload(const Lease& lease, std::span<Record> records,
                      EncodedPart encoded);
  // Appends `records` of `batch` to the batch's payload, started under the lease's
  // name if need be. Collector thread.
  Status AppendPayload(BatchId batch, std::uint64_t token, std::span<Record> records);
  // Drops the payloads being written for batches no longer held (their lease was
  // lost). Collector thread.
  void DropUnheldPayloads();
  // Removes every payload the previous group left for `batch` (it is committed here).
  void RemovePreviousPayloads(BatchId batch);
  // At start: removes payloads of dead attempts, and of batches done here already.
  void CollectOrphanPayloads();
  // Records that finished before the rest of their batch: keep them small.
  // Collector thread.
  void Partial(BatchId batch, std::span<Record> records);
  // Forgets what the batch holds in memory or on disk (committed, dropped or
  // given back). mutex_ held.
  void ForgetHeld(BatchId batch);
  // Commits with retries while the store is busy; the outputs, if any, are
  // published inside the transaction.
  Status CommitWithRetries(const Lease& lease, std::span<const ResultRow> rows,
                           StagedBatch* staged);
  void SuperviseLoop();
  // Writes the worker's report to the store (the last one with `stopped`). mutex_
  // not held.
  void Report(bool stopped);
  // One renewal of every held lease; handles lost leases. mutex_ held on entry and
  // exit (released during the store call).
  void RenewHeld(std::unique_lock<std::mutex>& lock);
  // Gives up after a stall: logs what is waited for. mutex_ not held.
  void Stall(std::chrono::milliseconds quiet);
  // Releases every lease still held (after an abort) and those given up earlier
  // whose release failed.
  void ReleaseHeldLeases();
  void ReleaseOrRemember(const Lease& lease);
  // True when the group has no batch left that anyone could still work on.
  Result<bool> GroupFinished();
  // Leases of this owner that it no longer holds (a failed release): released.
  void TakeBackOrphanedLeases();
  // Calls `call` again after a backoff while it fails with kBusy or kUnavailable
  // (until an abort or a stall).
  template <typename Call>
  auto RetryWhileTransient(std::string_view what, Call&& call) -> decltype(call());
  // Logs `line` the first time `cause` is seen; counts the later ones, summed up
  // at the end of Run(). mutex_ not held.
  void Warn(const std::string& cause, std::string_view line);
  void LogLine(std::string_view line) const;
  bool Ending() const;  // stop, abort, stall or error: mutex_ held

  Store& store_;
  BatchOutput* const output_;  // may be null; used by the collector thread only
  WorkerOptions options_;
  std::vector<NamedStage> stages_;  // moved into the runtime by Run()
  Runtime* runtime_ = nullptr;      // valid during Run()

  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> abort_requested_{false};
  std::atomic<bool> stalled_{false};
  // Threads waiting for a busy or unreachable store: the watchdog waits too.
  std::atomic<int> store_waits_{0};
  std::atomic<int> unreachable_waits_{0};  // of those, for kUnavailable
  bool ran_ = false;

  mutable std::mutex mutex_;
  std::condition_variable changed_;  // signalled on commit, stop, abort, stall
  std::map<BatchId, Held> held_;     // GUARDED_BY(mutex_)
  // Batches whose loss a renewal found and dropped: their commit, if the runtime
  // had reported them already, is quietly skipped.
  std::set<BatchId> lost_;         // GUARDED_BY(mutex_)
  std::vector<Lease> unreleased_;  // GUARDED_BY(mutex_): releases that failed
  std::map<BatchId, std::uint64_t> held_bytes_;  // GUARDED_BY(mutex_): see Partial()
  std::map<BatchId, Status> spill_errors_;       // GUARDED_BY(mutex_)
  // Collector thread only (Partial, Commit; cleared when Run() ends).
  std::map<BatchId, EncodedPart> encoded_;
  // Batches whose payload was found damaged while being read: redone, never
  // committed. Guarded by mutex_.
  std::map<BatchId, Status> damaged_;
  std::uint32_t last_batch_items_ = 0;  // GUARDED_BY(mutex_): for leasing
  Status commit_error_;                 // GUARDED_BY(mutex_): first store/output error
  WorkerProgress progress_;             // GUARDED_BY(mutex_)
  std::int64_t started_ms_ = 0;         // wall clock at Run()
  std::int64_t last_renewal_ms_ = 0;    // GUARDED_BY(mutex_): wall clock, 0 = none
  std::string stage_counters_json_;     // GUARDED_BY(mutex_): as last reported
  // GUARDED_BY(mutex_): the stages' counters kept in the time series, as last reported.
  std::map<std::string, std::uint64_t> stage_sample_;
  bool supervisor_stop_ = false;        // GUARDED_BY(mutex_)
  // The stages' counters as the run ended, for StageProgress() after it.
  std::vector<StageCounters> final_stages_;  // GUARDED_BY(mutex_)

  mutable std::mutex warn_mutex_;
  std::map<std::string, std::uint64_t> warnings_;  // GUARDED_BY(warn_mutex_)
};

}  // namespace sluice

#endif  // SLUICE_CORE_WORKER_H_
