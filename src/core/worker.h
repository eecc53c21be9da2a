// The worker: leases batches from a Store, streams them through a Runtime, and
// commits each batch's results with its lease token.
//
// Threads:
//  - the caller of Run() is the source: it leases up to the batch budget, reads each
//    batch's items and submits them to the runtime;
//  - the runtime's collector thread commits finished batches (CommitBatch checks the
//    token, so a batch whose lease was lost is refused and left to its new owner);
//    when the worker has a BatchOutput, it first writes the batch's outputs, and
//    commits only if they were written (src/core/batch_output.h explains the order);
//  - a renewer thread extends every held lease a few times per lease period.
//
// Stopping: RequestStop() stops leasing and gives the batches in flight up to
// `grace` to finish and commit; then the rest are aborted and their leases released,
// so another run can take them at once. Abort() does that immediately. Either way,
// what was committed stays committed, and a later run resumes from the store.
#ifndef SLUICE_CORE_WORKER_H_
#define SLUICE_CORE_WORKER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "sluice/store.h"
#include "src/core/batch_output.h"
#include "src/core/owner_id.h"
#include "src/core/runtime.h"

namespace sluice {

struct WorkerOptions {
  std::string group = "main";                // stage group whose batches to lease
  std::string owner;                         // unique worker id (see OwnerId())
  std::chrono::milliseconds lease{60000};    // lease duration; renewed every third
  std::size_t max_batches_in_flight = 8;     // batches leased and not committed
  std::chrono::milliseconds grace{30000};    // time in-flight batches get on stop
  std::chrono::milliseconds idle_poll{250};  // how often to look again when idle
  RuntimeOptions runtime;                    // max_batches_in_flight is set from above
};

// Progress counters, readable from any thread while the worker runs.
struct WorkerProgress {
  std::uint64_t batches_committed = 0;
  std::uint64_t items_committed = 0;
  std::uint64_t items_failed = 0;
  std::uint64_t batches_lost = 0;  // commits refused because the lease was lost
  std::size_t batches_in_flight = 0;
};

// How a Run() ended.
enum class WorkerEnd {
  kFinished,  // no batch of the group is left to do
  kStopped,   // RequestStop() or Abort(): work remains for a later run
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

  // Processes batches until none is left or a stop is requested. Returns an error if
  // the store fails (other than a lost lease, which is routine).
  Result<WorkerEnd> Run();

  void RequestStop();
  void Abort();

  WorkerProgress Progress() const;
  std::vector<StageCounters> StageProgress() const;

 private:
  void Commit(BatchId batch, std::vector<Record> records);
  void RenewLoop();
  // Releases every lease still held (after an abort).
  void ReleaseHeldLeases();
  // True when the group has no batch left that anyone could still work on.
  Result<bool> GroupFinished();

  Store& store_;
  BatchOutput* const output_;  // may be null; used by the collector thread only
  WorkerOptions options_;
  std::vector<NamedStage> stages_;  // moved into the runtime by Run()
  Runtime* runtime_ = nullptr;      // valid during Run()

  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> abort_requested_{false};

  mutable std::mutex mutex_;
  std::condition_variable changed_;  // signalled on commit, stop, abort
  std::map<BatchId, Lease> held_;    // GUARDED_BY(mutex_)
  Status commit_error_;              // GUARDED_BY(mutex_): first store/output error
  WorkerProgress progress_;          // GUARDED_BY(mutex_)
  bool renewer_stop_ = false;        // GUARDED_BY(mutex_)
};

// The JSON object of a record's result fields ("" when it has none).
std::string ResultFieldsJson(const Record& record);

}  // namespace sluice

#endif  // SLUICE_CORE_WORKER_H_
