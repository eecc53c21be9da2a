// The Store: sluice's durable state.
//
// It holds the items (one per input row, ids dense in input order), the batches
// (contiguous id ranges, the unit of leasing and commit) with their lease state per
// stage group, the results (one per item and group), and what was ingested from
// which input file.
//
// Leasing: LeaseBatches() hands out pending batches, and batches whose lease expired,
// to one owner at a time, each with a fencing token that increases at every lease.
// CommitBatch() writes a batch's results and its done mark in one transaction, and
// is refused with kStaleLease unless the caller's token is still the batch's current
// one: a worker whose lease was taken over cannot overwrite the new owner's work.
//
// Backends: SQLite (embedded, src/store/sqlite_store.h) and, later, PostgreSQL. All
// methods are thread-safe; a store may be used by several threads of one process and
// by several processes at once.
#ifndef SLUICE_STORE_H_
#define SLUICE_STORE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/record.h"
#include "sluice/status.h"

namespace sluice {

// The current schema version. A store made by another version is refused on open.
inline constexpr int kStoreSchemaVersion = 1;

// One input row to ingest.
struct ItemRow {
  std::string url;
  // Extra columns as a compact JSON object of strings ("" when there are none).
  std::string columns_json;
};

// An input row that could not be ingested: kept so that nothing is silently dropped.
struct RejectedLine {
  std::uint64_t line = 0;  // 1-based line number in the input
  std::string reason;      // e.g. "invalid UTF-8", "line longer than 65536 bytes"
  std::string excerpt;     // the start of the line, made printable
};

// Identifies an input file by content, so that the same file ingested twice (under
// any name) is recognised.
struct InputFingerprint {
  std::string path;        // as given by the user (for messages)
  std::uint64_t size = 0;  // bytes on disk
  std::string digest;  // hex digest of the file's content (see src/input/fingerprint.h)
};

// Where ingest of one input file stands.
struct InputState {
  std::int64_t input_id = 0;
  bool complete = false;         // every line was ingested
  std::uint64_t lines_done = 0;  // lines consumed so far (items + rejects + blank)
  std::string first_path;        // the path it was first ingested under
};

// A batch held by one owner.
struct Lease {
  BatchId batch_id = 0;
  std::string group;
  std::string owner;
  std::uint64_t token = 0;  // fencing token: increases at every lease of the batch
  ItemId first_item = 0;    // the batch covers [first_item, first_item + item_count)
  std::uint32_t item_count = 0;
  std::int64_t expires_at_ms = 0;  // store clock, milliseconds since the epoch
};

// Which batches a lease may take: those whose id mod `count` is `index` (every batch
// by default). Workers given the partitions 0/N .. N-1/N share a store without ever
// asking for the same batch (`sluice worker --partition K/N`).
struct LeasePartition {
  std::uint32_t index = 0;
  std::uint32_t count = 1;
};

// InvalidArgument ("partition 3/2: ...") unless count >= 1 and index < count.
Status CheckLeasePartition(const LeasePartition& partition);

// One item's outcome, written at commit.
struct ResultRow {
  ItemId item_id = 0;
  FailureReason reason = FailureReason::kNone;  // kNone: ok
  std::string error;                            // details for a failed item
  std::string fields_json;  // JSON object of the fields stages produced ("" = none)
};

// Counts for `sluice status`.
struct StoreSummary {
  std::uint64_t items = 0;
  std::uint64_t batches_pending = 0;
  std::uint64_t batches_leased = 0;  // leased and not expired
  std::uint64_t batches_done = 0;
  std::uint64_t results_ok = 0;
  std::uint64_t results_failed = 0;
  std::uint64_t results_filtered = 0;  // dropped by a filter (not failures)
  // Items with a result: ok, failed or filtered.
  std::uint64_t results() const { return results_ok + results_failed + results_filtered; }
  std::map<std::string, std::uint64_t> failures;  // reason name -> count
  std::uint64_t rejected_lines = 0;
  std::uint64_t inputs = 0;
  std::uint64_t inputs_complete = 0;
};

// One row of `sluice export`.
struct ExportRow {
  ItemId id = 0;
  std::string url;
  std::string columns_json;  // extra input columns ("" = none)
  bool has_result = false;   // false: not processed yet
  FailureReason reason = FailureReason::kNone;
  std::string error;
  std::string fields_json;  // "" = none
};

// A worker's report of itself, written every few seconds (Store::ReportWorker), so
// that `sluice status` shows from any machine who works on which group, holding
// what, at what rate.
struct WorkerReport {
  std::string owner;  // the worker's owner id (src/core/owner_id.h)
  std::string group;
  std::string host;                   // where it runs (for people)
  std::int64_t started_ms = 0;        // wall clock, when the worker started
  std::int64_t last_renewal_ms = 0;   // wall clock, its last renewal that worked; 0: none
  std::uint64_t batches_held = 0;
  std::uint64_t items_committed = 0;  // since it started
  std::uint64_t items_failed = 0;     // of those
  bool stopped = false;               // its last report: the worker ended
  // The stages' own counters summed (Stage::Counters()), as a JSON object of numbers
  // ("" = none).
  std::string counters_json;
  // The few counters kept in the store's time series (WorkerSample), as a JSON object
  // of numbers ("" = none): small, for there is a row of them per interval.
  std::string sample_json;
  // Set by the store: when this report was written (store clock), and the items and
  // time of the report before it, for the rate.
  std::int64_t updated_ms = 0;
  std::uint64_t previous_items = 0;
  std::int64_t previous_ms = 0;
};

// A point of the store's time series of progress: a worker's counts at a moment.
// ReportWorker keeps one per worker and group every kWorkerSampleEveryMs (and its
// first and last report), so that rates can be told over the whole run, across
// restarts (each run of a worker is its own owner).
struct WorkerSample {
  std::string owner;
  std::string group;
  std::int64_t at_ms = 0;  // store clock
  std::uint64_t items_committed = 0;  // since that worker started
  std::uint64_t items_failed = 0;
  std::string counters_json;  // WorkerReport::sample_json as reported
};

// How often a worker's report is kept as a sample, and for how long samples stay.
inline constexpr std::int64_t kWorkerSampleEveryMs = 15'000;
inline constexpr std::int64_t kWorkerSampleKeepMs = 90LL * 24 * 3600 * 1000;

// Wall-clock milliseconds since the epoch; replaceable in tests.
class StoreClock {
 public:
  virtual ~StoreClock() = default;
  virtual std::int64_t NowMs() const = 0;
};

// The real wall clock. Thread-safe; one instance is shared.
StoreClock& SystemStoreClock();

class Store {
 public:
  virtual ~Store() = default;

  // --- Ingest -------------------------------------------------------------------
  // Stages are ingested in order: BeginInput, AppendItems..., FinishInput. Each
  // AppendItems call is one transaction, so a crash loses at most the call in
  // progress, and ingest resumes from InputState::lines_done.

  // Returns the state of the input with this fingerprint, registering it if new.
  virtual Result<InputState> BeginInput(const InputFingerprint& input) = 0;

  // Appends items in order, assigning the next ids, and cuts them into batches of
  // at most `batch_size` items for `groups` (the first group's batches are pending,
  // the others wait for it). A batch never spans two calls: callers pass whole
  // batches except at the end of an input. Records `rejects` and sets the input's
  // lines_done to `lines_done`, all in one transaction.
  virtual Status AppendItems(std::int64_t input_id, std::span<const ItemRow> items,
                             std::span<const RejectedLine> rejects,
                             std::uint64_t lines_done, std::uint32_t batch_size,
                             std::span<const std::string> groups) = 0;

  // Marks the input completely ingested.
  virtual Status FinishInput(std::int64_t input_id, std::uint64_t lines_done) = 0;

  // --- Leasing --------------------------------------------------------------------

  // Leases up to `max_batches` batches of `group` that are pending or whose lease
  // expired, lowest id first, for `duration`. Returns an empty vector when none.
  // An expired lease of `owner` itself is never handed back to it: the owner may
  // still be working on that batch (a late renewal), and a second lease would make
  // it run the batch twice. It goes to another owner, or back to `owner` once
  // released (ReleaseBatch, ReleaseLeasesOfDeadOwners).
  // Only batches of `partition`. REQUIRES: partition.count >= 1 and
  // partition.index < partition.count (else InvalidArgument, nothing leased).
  virtual Result<std::vector<Lease>> LeaseBatches(std::string_view group,
                                                  std::string_view owner,
                                                  std::size_t max_batches,
                                                  std::chrono::milliseconds duration,
                                                  LeasePartition partition) = 0;
  Result<std::vector<Lease>> LeaseBatches(std::string_view group, std::string_view owner,
                                          std::size_t max_batches,
                                          std::chrono::milliseconds duration) {
    return LeaseBatches(group, owner, max_batches, duration, LeasePartition{});
  }

  // Extends each lease still held with its token by `duration`; returns the batch
  // ids of the leases that were lost (expired and taken, done, or released).
  virtual Result<std::vector<BatchId>> RenewLeases(
      std::span<const Lease> leases, std::chrono::milliseconds duration) = 0;

  // Reads the items of a leased batch that have no result yet, in id order.
  virtual Result<std::vector<Record>> ReadBatchItems(const Lease& lease) = 0;

  // In one transaction: checks the lease token (kStaleLease if not current), writes
  // `results` (items of this batch only), marks the batch done for its group and
  // makes it pending for the next group, if any. `publish`, when given, runs inside
  // the transaction after the token check and the writes, just before the commit
  // (the worker renames the batch's staged output files there, so that a stale
  // worker never replaces a current owner's outputs); its error aborts the commit.
  // Idempotent: when the batch is already done with this very lease (a retry of a
  // commit whose outcome was unknown, e.g. the connection dropped during COMMIT),
  // it returns Ok and writes nothing, without calling `publish`.
  virtual Status CommitBatch(const Lease& lease, std::span<const ResultRow> results,
                             const std::function<Status()>& publish) = 0;
  Status CommitBatch(const Lease& lease, std::span<const ResultRow> results) {
    return CommitBatch(lease, results, {});
  }

  // Returns a leased batch to pending (no-op if the token is no longer current).
  virtual Status ReleaseBatch(const Lease& lease) = 0;

  // The token of the lease that committed `batch` in `group`; nullopt while the batch
  // is not done there (or there is no such batch or group). The next stage group
  // reads it to find the payload that commit made valid (src/core/blob_store.h).
  virtual Result<std::optional<std::uint64_t>> CommittedToken(std::string_view group,
                                                              BatchId batch) = 0;

  // Releases every lease of `group` whose owner satisfies `is_dead(owner)`. Used at
  // start-up to take back at once the batches of a crashed process on this host,
  // instead of waiting for their expiry. Returns how many were released.
  virtual Result<std::uint64_t> ReleaseLeasesOfDeadOwners(
      std::string_view group,
      const std::function<bool(std::string_view owner)>& is_dead) = 0;

  // --- Reading and maintenance ------------------------------------------------------

  virtual Result<StoreSummary> Summarize(std::string_view group) = 0;

  // Calls `row` for every item in id order, with its result in `group` if any.
  // Stops early and returns the callback's error if it returns one.
  virtual Status ExportRows(std::string_view group,
                            const std::function<Status(const ExportRow& row)>& row) = 0;

  // Calls `reject` for every rejected input line, in input then line order.
  virtual Status ListRejects(
      const std::function<Status(std::string_view path, const RejectedLine&)>&
          reject) = 0;

  // Puts back the items that failed in `group` (only those with `reason`, if
  // given), to be redone from the first stage group on: their results are deleted
  // in every group, their batches become pending in the first group and waiting in
  // the others (a leased one loses its lease). Items of a batch that is pending or
  // leased in a group after the first (on its way between groups) are left alone.
  // Returns the number of items put back.
  virtual Result<std::uint64_t> RetryFailed(std::string_view group,
                                            std::optional<FailureReason> reason) = 0;

  // The payload `lease`'s group reads for its batch (src/core/blob_store.h) is lost
  // or damaged: the batch's items without a result in that group are redone from
  // the first group on, as RetryFailed redoes them, and the lease is revoked (the
  // batch waits in its group for the groups before). kStaleLease, nothing changed,
  // if the lease is not current.
  virtual Status RedoFromFirstGroup(const Lease& lease) = 0;

  // Records `report` in place of the worker's previous one for its group, and as a
  // sample (WorkerSample) when it is the worker's first or last, or its last sample is
  // kWorkerSampleEveryMs old. Reports not renewed for a week are dropped, samples
  // after kWorkerSampleKeepMs.
  virtual Status ReportWorker(const WorkerReport& report) = 0;
  // Every worker's latest report, by group then owner.
  virtual Result<std::vector<WorkerReport>> ListWorkers() = 0;
  // The time series: every sample kept of `group` ("" = of every group), by time
  // then owner.
  virtual Result<std::vector<WorkerSample>> ListSamples(std::string_view group) = 0;

  // A value kept with the store (e.g. the pipeline's fingerprint); nullopt if unset.
  virtual Result<std::optional<std::string>> GetMeta(std::string_view key) = 0;
  virtual Status SetMeta(std::string_view key, std::string_view value) = 0;
};

}  // namespace sluice

#endif  // SLUICE_STORE_H_
