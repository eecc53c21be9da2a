// The class behind OpenSqliteStore(), shared by its three implementation files:
//   sqlite_store.cc     opening, statement cache, stage groups, ingest, meta
//   sqlite_leases.cc    leasing, reading a batch, commit, release
//   sqlite_reports.cc   summary, export, rejects, retry of failures
// Not part of the store's interface: include sqlite_store.h instead.
#ifndef SLUICE_STORE_SQLITE_STORE_INTERNAL_H_
#define SLUICE_STORE_SQLITE_STORE_INTERNAL_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "sluice/store.h"
#include "src/store/sqlite_bulk_insert.h"
#include "src/store/sqlite_db.h"
#include "src/store/sqlite_store.h"

namespace sluice::sqlite {

// Thread-safe: every public method holds mutex_ while it uses the connection.
class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<SqliteDb> db, const SqliteStoreOptions& options);
  ~SqliteStore() override;

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
  using Store::CommitBatch;
  Status CommitBatch(const Lease& lease, std::span<const ResultRow> results,
                     const std::function<Status()>& publish) override;
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
  // A group id that matches no row: used for groups the store does not know, so
  // that queries on them simply find nothing.
  static constexpr std::int64_t kNoGroup = -1;

  // Returns the statement for `sql`, preparing it on first use. Statements are keyed
  // by the address of `sql`: REQUIRES a string literal (one call site, one entry).
  // The caller must Reset() it when done (ScopedReset). REQUIRES: mutex_ held.
  Result<Statement*> Cached(const char* sql);

  // The id of `group`, or kNoGroup. REQUIRES: mutex_ held.
  Result<std::int64_t> GroupId(std::string_view group);
  // The group after `group_id` in pipeline order, if any. REQUIRES: mutex_ held and
  // group_names_ loaded (GroupId found the group).
  std::optional<std::int64_t> NextGroupId(std::int64_t group_id) const;
  // Reads stage_groups into group_names_. REQUIRES: mutex_ held.
  Status LoadGroups();
  // Registers `groups` on the first append; afterwards checks they are the same.
  // REQUIRES: mutex_ held, a write transaction open.
  Status CheckOrRegisterGroups(std::span<const std::string> groups);

  // Adds `delta` to the count of results of `group_id` with `reason` ("" = ok).
  // REQUIRES: mutex_ held, a write transaction open.
  Status AddToResultCount(std::int64_t group_id, std::string_view reason,
                          std::int64_t delta);

  // The *Locked methods do the work of the public method of the same name, without
  // its lock and error context. REQUIRES: mutex_ held.
  Status AppendItemsLocked(std::int64_t input_id, std::span<const ItemRow> items,
                           std::span<const RejectedLine> rejects,
                           std::uint64_t lines_done, std::uint32_t batch_size,
                           std::span<const std::string> groups);
  Result<std::vector<Lease>> LeaseBatchesLocked(std::string_view group,
                                                std::string_view owner,
                                                std::size_t max_batches,
                                                std::chrono::milliseconds duration,
                                                LeasePartition partition);
  Status CommitBatchLocked(const Lease& lease, std::span<const ResultRow> results,
                           const std::function<Status()>& publish);
  // The stored facts about a leased batch.
  struct CurrentBatch {
    std::int64_t group_id;
    ItemId first_item;
    ItemId end_item;  // one past the last item
    // Only with `accept_committed`: the batch is done, committed with this very
    // lease (a retried commit whose first try's outcome was unknown).
    bool committed = false;
  };
  // Checks that `lease` is the batch's current lease (kStaleLease if not). With
  // `accept_committed`, a batch already done with this lease's token is returned
  // with `committed` set instead of being refused.
  // REQUIRES: mutex_ held, a transaction open.
  Result<CurrentBatch> CheckLeaseIsCurrent(const Lease& lease,
                                           bool accept_committed = false);
  Result<std::vector<Record>> ReadBatchItemsLocked(const Lease& lease);
  Result<StoreSummary> SummarizeLocked(std::string_view group);
  Result<std::uint64_t> RetryFailedLocked(std::string_view group,
                                          std::optional<FailureReason> reason);
  // Creates (or empties) temp.retry_items (item_id, batch_id): the items
  // RedoItemsLocked redoes.
  Status CreateRetryItems();
  // Redoes the items of temp.retry_items, of `batches`, from the first group on (see
  // RetryFailed), and empties the table. Returns the results deleted per group id.
  // REQUIRES: mutex_ held, a write transaction open.
  Result<std::vector<std::uint64_t>> RedoItemsLocked(const std::set<std::int64_t>& batches);

  StoreClock* const clock_;  // not owned

  std::mutex mutex_;
  // Guarded by mutex_: the connection, its statements, and the group names by id.
  // Statements are declared after db_ so that they are finalized first.
  std::unique_ptr<SqliteDb> db_;
  std::unordered_map<const char*, Statement> statements_;
  BulkInsert insert_items_{"INSERT INTO items (id, url, columns_json)", 3};
  BulkInsert insert_results_{
      "INSERT INTO results (group_id, item_id, reason, error, fields_json)", 5};
  // Stage groups never change once registered, so a loaded list stays valid.
  std::vector<std::string> group_names_;
};

}  // namespace sluice::sqlite

#endif  // SLUICE_STORE_SQLITE_STORE_INTERNAL_H_
