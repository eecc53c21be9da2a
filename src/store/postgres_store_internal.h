// The class behind OpenPostgresStore(), shared by its implementation files:
//   postgres_schema.cc    the tables, and checking a database's schema
//   postgres_store.cc     opening, stage groups, counters, ingest, meta
//   postgres_leases.cc    leasing, reading a batch, commit, release
//   postgres_reports.cc   summary, export, rejects, retry of failures
// Not part of the store's interface: include postgres_store.h instead.
#ifndef SLUICE_STORE_POSTGRES_STORE_INTERNAL_H_
#define SLUICE_STORE_POSTGRES_STORE_INTERNAL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "sluice/store.h"
#include "src/store/pg_conn.h"
#include "src/store/postgres_store.h"

namespace sluice::postgres {

inline constexpr std::int64_t kNoGroup = -1;
// counters.group_id of the store-wide counts (rejected lines).
inline constexpr std::int64_t kStoreWide = -1;
// Counter rows per name: updates of one count spread over this many rows, so that
// concurrent commits rarely wait for each other's row lock.
inline constexpr std::int64_t kCounterShards = 16;

// Creates the tables in an empty database, or checks the version of an existing
// store. REQUIRES: no transaction open.
Status PrepareSchema(pg::PgConn& conn, bool create_if_missing);

// Changes to the counters, applied in one statement (rows in key order, so that two
// transactions never lock counter rows in opposite orders).
class CounterDelta {
 public:
  void Add(std::int64_t group_id, std::string name, std::int64_t shard,
           std::int64_t delta);
  bool empty() const { return deltas_.empty(); }
  // The batch-state counter of `state` ("pending", "leased", ...) for a batch.
  void AddBatch(std::int64_t group_id, std::string_view state, std::int64_t batch_id,
                std::int64_t delta) {
    Add(group_id, "batches:" + std::string(state), batch_id % kCounterShards, delta);
  }
  // The result counter of `reason` ("" = ok) of `group_id`.
  void AddResult(std::int64_t group_id, std::string_view reason, std::int64_t shard,
                 std::int64_t delta) {
    Add(group_id, "results:" + std::string(reason), shard % kCounterShards, delta);
  }
  Status Apply(pg::PgConn& conn) const;

 private:
  std::map<std::tuple<std::int64_t, std::string, std::int64_t>, std::int64_t> deltas_;
};

// Thread-safe: every public method holds mutex_ while it uses the connection.
class PostgresStore final : public Store {
 public:
  PostgresStore(std::unique_ptr<pg::PgConn> conn, const PostgresStoreOptions& options);
  ~PostgresStore() override;

  Result<InputState> BeginInput(const InputFingerprint& input) override;
  Status AppendItems(std::int64_t input_id, std::span<const ItemRow> items,
                     std::span<const RejectedLine> rejects, std::uint64_t lines_done,
                     std::uint32_t batch_size,
                     std::span<const std::string> groups) override;
  Status FinishInput(std::int64_t input_id, std::uint64_t lines_done) override;

  Result<std::vector<Lease>> LeaseBatches(std::string_view group, std::string_view owner,
                                          std::size_t max_batches,
                                          std::chrono::milliseconds duration,
                                          LeasePartition partition) override;
  using Store::LeaseBatches;
  Result<std::vector<BatchId>> RenewLeases(std::span<const Lease> leases,
                                           std::chrono::milliseconds duration) override;
  Result<std::vector<Record>> ReadBatchItems(const Lease& lease) override;
  Status CommitBatch(const Lease& lease, std::span<const ResultRow> results,
                     const std::function<Status()>& publish) override;
  using Store::CommitBatch;
  Status ReleaseBatch(const Lease& lease) override;
  Result<std::optional<std::uint64_t>> CommittedToken(std::string_view group,
                                                      BatchId batch) override;
  Status ReportWorker(const WorkerReport& report) override;
  Result<std::vector<WorkerReport>> ListWorkers() override;
  Result<std::vector<WorkerSample>> ListSamples(std::string_view group) override;
  Result<std::uint64_t> ReleaseLeasesOfDeadOwners(
      std::string_view group,
      const std::function<bool(std::string_view owner)>& is_dead) override;

  Result<StoreSummary> Summarize(std::string_view group) override;
  Status ExportRows(std::string_view group,
                    const std::function<Status(const ExportRow& row)>& row) override;
  Status ListRejects(const std::function<Status(std::string_view path,
                                                const RejectedLine&)>& reject) override;
  Status RedoFromFirstGroup(const Lease& lease) override;
  Result<std::uint64_t> RetryFailed(std::string_view group,
                                    std::optional<FailureReason> reason) override;

  Result<std::optional<std::string>> GetMeta(std::string_view key) override;
  Status SetMeta(std::string_view key, std::string_view value) override;

 private:
  struct CurrentBatch {
    std::int64_t group_id;
    ItemId first_item;
    ItemId end_item;  // one past the last item
    // Only with `accept_committed`: the batch is done, committed with this very
    // lease (a retried commit whose first try's outcome was unknown).
    bool committed = false;
  };

  // The connection, connected again if an earlier call found it broken.
  // REQUIRES: mutex_ held.
  Result<pg::PgConn*> Conn();

  // The "now" parameter: the test clock's time, or NULL for the server's clock (see
  // NowSql). REQUIRES: mutex_ held.
  pg::Param NowParam() const;

  // Stage groups, cached once loaded (they never change once registered).
  Status LoadGroups(pg::PgConn& conn);
  Result<std::int64_t> GroupId(pg::PgConn& conn, std::string_view group);
  std::optional<std::int64_t> NextGroupId(std::int64_t group_id) const;
  Status CheckOrRegisterGroups(pg::PgConn& conn, std::span<const std::string> groups);

  // Checks, inside the caller's transaction, that `lease` is the batch's current
  // lease; with `lock`, locks the batch row until the transaction ends. With
  // `accept_committed`, a batch already done with this lease's token is returned
  // with `committed` set instead of being refused.
  Result<CurrentBatch> CheckLeaseIsCurrent(pg::PgConn& conn, const Lease& lease,
                                           bool lock, bool accept_committed = false);

  Status AppendItemsLocked(pg::PgConn& conn, std::int64_t input_id,
                           std::span<const ItemRow> items,
                           std::span<const RejectedLine> rejects,
                           std::uint64_t lines_done, std::uint32_t batch_size,
                           std::span<const std::string> groups);
  Result<std::vector<Lease>> LeaseBatchesLocked(pg::PgConn& conn, std::string_view group,
                                                std::string_view owner,
                                                std::size_t max_batches,
                                                std::chrono::milliseconds duration,
                                                LeasePartition partition);
  Status CommitBatchLocked(pg::PgConn& conn, const Lease& lease,
                           std::span<const ResultRow> results,
                           const std::function<Status()>& publish);
  Result<StoreSummary> SummarizeLocked(pg::PgConn& conn, std::string_view group);
  // Redoes the items of the transaction's temporary table retry_items (item_id,
  // batch_id), of the batches `ids` (an array literal), from the first group on (see
  // RetryFailed). Returns the results deleted per group id. REQUIRES: mutex_ held, a
  // transaction open.
  Result<std::vector<std::uint64_t>> RedoItemsLocked(pg::PgConn& conn,
                                                     const std::string& ids);
  Result<std::uint64_t> RetryFailedLocked(pg::PgConn& conn, std::string_view group,
                                          std::optional<FailureReason> reason);

  StoreClock* const clock_;  // nullptr: the server's clock

  std::mutex mutex_;
  std::unique_ptr<pg::PgConn> conn_;      // guarded by mutex_
  std::vector<std::string> group_names_;  // guarded by mutex_; index = group id
};

// The SQL for "now" in milliseconds since the epoch, given parameter $n (NowParam).
std::string NowSql(int n);

}  // namespace sluice::postgres

#endif  // SLUICE_STORE_POSTGRES_STORE_INTERNAL_H_
