// Leasing in the SQLite store: lease, renew, read a leased batch, commit, release.
//
// A lease is the row batches(group_id, batch_id) in state 'leased' with its owner,
// token and expiry. Picking and marking happen in one BEGIN IMMEDIATE transaction,
// so two connections can never both take a batch, and never to the owner that holds
// it (its expired lease goes to someone else). The token grows at every lease;
// CommitBatch, RenewLeases, ReadBatchItems and ReleaseBatch act only while the
// caller's token is the batch's current one and the batch is still leased. An
// expired lease stays valid until someone else takes the batch: nobody else holds it,
// so a slow worker that still gets there first may commit.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <limits>

#include "src/store/item_columns.h"
#include "src/store/sqlite_schema.h"
#include "src/store/sqlite_store_internal.h"

namespace sluice::sqlite {
namespace {

// A candidate batch for a lease, as read before it is marked.
struct Candidate {
  std::int64_t batch_id;
  std::int64_t token;
  std::int64_t first_item;
  std::int64_t item_count;
};

Status ReadCandidates(Statement& select, std::vector<Candidate>& out) {
  while (true) {
    SLUICE_ASSIGN_OR_RETURN(bool has_row, select.Step());
    if (!has_row) return Status::Ok();
    out.push_back({select.ColumnInt(0), select.ColumnInt(1), select.ColumnInt(2),
                   select.ColumnInt(3)});
  }
}

}  // namespace

Result<std::vector<Lease>> SqliteStore::LeaseBatches(std::string_view group,
                                                     std::string_view owner,
                                                     std::size_t max_batches,
                                                     std::chrono::milliseconds duration,
                                                     LeasePartition partition) {
  std::lock_guard lock(mutex_);
  auto leases = LeaseBatchesLocked(group, owner, max_batches, duration, partition);
  if (!leases.ok()) {
    return leases.status().WithContext(
        fmt::format("store: lease batches of group {}", group));
  }
  return leases;
}

Result<std::vector<Lease>> SqliteStore::LeaseBatchesLocked(
    std::string_view group, std::string_view owner, std::size_t max_batches,
    std::chrono::milliseconds duration, LeasePartition partition) {
  std::vector<Lease> leases;
  SLUICE_RETURN_IF_ERROR(CheckLeasePartition(partition));
  if (max_batches == 0) return leases;
  SLUICE_ASSIGN_OR_RETURN(std::int64_t group_id, GroupId(group));
  if (group_id == kNoGroup) return leases;  // nothing ingested for it (yet)

  Transaction transaction(*db_);
  SLUICE_RETURN_IF_ERROR(transaction.BeginWrite());
  // Read the clock once the write lock is held: a lease is judged expired against
  // the time it is actually taken over.
  const std::int64_t now = clock_->NowMs();
  const auto limit = static_cast<std::int64_t>(
      std::min<std::size_t>(max_batches, std::numeric_limits<std::int32_t>::max()));

  // Two index range scans instead of one OR: pending batches can number millions,
  // and an OR would sort them all; expired leases are few (at most those in flight).
  // INDEXED BY: without it SQLite walks the primary key in batch order, through
  // every done batch, to find the first pending one.
  std::vector<Candidate> candidates;
  {
    SLUICE_ASSIGN_OR_RETURN(
        Statement * expired,
        Cached("SELECT batch_id, token, first_item, item_count "
               "FROM batches INDEXED BY batches_by_state "
               "WHERE group_id = ?1 AND state = 'leased' AND expires_at_ms < ?2 "
               "AND owner IS NOT ?4 AND batch_id % ?5 = ?6 ORDER BY batch_id LIMIT ?3"));
    ScopedReset reset(*expired);
    expired->BindInt(1, group_id);
    expired->BindInt(2, now);
    expired->BindInt(3, limit);
    expired->BindText(4, owner);
    expired->BindInt(5, partition.count);
    expired->BindInt(6, partition.index);
    SLUICE_RETURN_IF_ERROR(ReadCandidates(*expired, candidates));
  }
  {
    SLUICE_ASSIGN_OR_RETURN(
        Statement * pending,
        Cached("SELECT batch_id, token, first_item, item_count "
               "FROM batches INDEXED BY batches_by_state "
               "WHERE group_id = ?1 AND state = 'pending' AND batch_id % ?3 = ?4 "
               "ORDER BY batch_id LIMIT ?2"));
    ScopedReset reset(*pending);
    pending->BindInt(1, group_id);
    pending->BindInt(2, limit);
    pending->BindInt(3, partition.count);
    pending->BindInt(4, partition.index);
    SLUICE_RETURN_IF_ERROR(ReadCandidates(*pending, candidates));
  }
  std::sort(
      candidates.begin(), candidates.end(),
      [](const Candidate& a, const Candidate& b) { return a.batch_id < b.batch_id; });
  if (candidates.size() > max_batches) candidates.resize(max_batches);

  SLUICE_ASSIGN_OR_RETURN(
      Statement * take,
      Cached("UPDATE batches SET state = 'leased', owner = ?3, token = ?4, "
             "expires_at_ms = ?5 WHERE group_id = ?1 AND batch_id = ?2"));
  ScopedReset reset_take(*take);
  const std::int64_t expires_at = now + duration.count();
  leases.reserve(candidates.size());
  for (const Candidate& candidate : candidates) {
    take->BindInt(1, group_id);
    take->BindInt(2, candidate.batch_id);
    take->BindText(3, owner);
    take->BindInt(4, candidate.token + 1);
    take->BindInt(5, expires_at);
    SLUICE_RETURN_IF_ERROR(take->Run());
    Lease& lease = leases.emplace_back();
    lease.batch_id = static_cast<BatchId>(candidate.batch_id);
    lease.group = std::string(group);
    lease.owner = std::string(owner);
    lease.token = static_cast<std::uint64_t>(candidate.token + 1);
    lease.first_item = static_cast<ItemId>(candidate.first_item);
    lease.item_count = static_cast<std::uint32_t>(candidate.item_count);
    lease.expires_at_ms = expires_at;
  }
  SLUICE_RETURN_IF_ERROR(transaction.Commit());
  return leases;
}

Result<std::vector<BatchId>> SqliteStore::RenewLeases(
    std::span<const Lease> leases, std::chrono::milliseconds duration) {
  std::lock_guard lock(mutex_);
  auto renew = [&]() -> Result<std::vector<BatchId>> {
    std::vector<BatchId> lost;
    if (leases.empty()) return lost;
    Transaction transaction(*db_);
    SLUICE_RETURN_IF_ERROR(transaction.BeginWrite());
    const std::int64_t expires_at = clock_->NowMs() + duration.count();
    SLUICE_ASSIGN_OR_RETURN(
        Statement * extend,
        Cached("UPDATE batches SET expires_at_ms = ?4 WHERE group_id = ?1 AND "
               "batch_id = ?2 AND token = ?3 AND state = 'leased'"));
    ScopedReset reset(*extend);
    for (const Lease& lease : leases) {
      SLUICE_ASSIGN_OR_RETURN(std::int64_t group_id, GroupId(lease.group));
      extend->BindInt(1, group_id);
      extend->BindInt(2, static_cast<std::int64_t>(lease.batch_id));
      extend->BindInt(3, static_cast<std::int64_t>(lease.token));
      extend->BindInt(4, expires_at);
      SLUICE_RETURN_IF_ERROR(extend->Run());
      if (extend->Changes() == 0) lost.push_back(lease.batch_id);
    }
    SLUICE_RETURN_IF_ERROR(transaction.Commit());
    return lost;
  };
  auto lost = renew();
  if (!lost.ok()) return lost.status().WithContext("store: renew leases");
  return lost;
}

Result<SqliteStore::CurrentBatch> SqliteStore::CheckLeaseIsCurrent(
    const Lease& lease, bool accept_committed) {
  SLUICE_ASSIGN_OR_RETURN(std::int64_t group_id, GroupId(lease.group));
  if (group_id == kNoGroup) return NotFound("no such stage group");
  SLUICE_ASSIGN_OR_RETURN(
      Statement * select,
      Cached("SELECT state, token, first_item, item_count FROM batches "
             "WHERE group_id = ?1 AND batch_id = ?2"));
  ScopedReset reset(*select);
  select->BindInt(1, group_id);
  select->BindInt(2, static_cast<std::int64_t>(lease.batch_id));
  SLUICE_ASSIGN_OR_RETURN(bool found, select->Step());
  if (!found) return NotFound("no such batch");
  const std::string_view state = select->ColumnText(0);
  const auto token = static_cast<std::uint64_t>(select->ColumnInt(1));
  if (token != lease.token) {
    return StaleLease(
        fmt::format("lease token {} is stale (current {})", lease.token, token));
  }
  CurrentBatch batch{group_id, static_cast<ItemId>(select->ColumnInt(2)),
                     static_cast<ItemId>(select->ColumnInt(2) + select->ColumnInt(3))};
  if (accept_committed && state == kDone) {
    batch.committed = true;
    return batch;
  }
  if (state != kLeased) {
    return StaleLease(fmt::format("lease token {} is stale (the batch is {})",
                                  lease.token, state == kPending ? "released" : state));
  }
  return batch;
}

Result<std::vector<Record>> SqliteStore::ReadBatchItems(const Lease& lease) {
  std::lock_guard lock(mutex_);
  auto records = ReadBatchItemsLocked(lease);
  if (!records.ok()) {
    return records.status().WithContext(
        fmt::format("store: read batch {} of group {}", lease.batch_id, lease.group));
  }
  return records;
}

Result<std::vector<Record>> SqliteStore::ReadBatchItemsLocked(const Lease& lease) {
  // A read transaction, so that the items read are those of the lease checked.
  Transaction transaction(*db_);
  SLUICE_RETURN_IF_ERROR(transaction.BeginRead());
  SLUICE_ASSIGN_OR_RETURN(CurrentBatch batch, CheckLeaseIsCurrent(lease));
  // Usually no item of the batch has a result yet (it is leased for the first
  // time): one range probe then spares a probe of results per item.
  SLUICE_ASSIGN_OR_RETURN(
      Statement * any_result,
      Cached("SELECT EXISTS (SELECT 1 FROM results WHERE group_id = ?1 AND "
             "item_id >= ?2 AND item_id < ?3)"));
  ScopedReset reset_any(*any_result);
  any_result->BindInt(1, batch.group_id);
  any_result->BindInt(2, static_cast<std::int64_t>(batch.first_item));
  any_result->BindInt(3, static_cast<std::int64_t>(batch.end_item));
  SLUICE_RETURN_IF_ERROR(any_result->Step().ToStatus());
  const bool some_done = any_result->ColumnInt(0) != 0;
  any_result->Reset();

  Statement* select = nullptr;
  if (some_done) {
    SLUICE_ASSIGN_OR_RETURN(
        select,
        Cached("SELECT id, url, columns_json FROM items WHERE id >= ?2 AND id < ?3 AND "
               "NOT EXISTS (SELECT 1 FROM results "
               "            WHERE results.group_id = ?1 AND results.item_id = items.id) "
               "ORDER BY id"));
    select->BindInt(1, batch.group_id);
  } else {
    SLUICE_ASSIGN_OR_RETURN(
        select,
        Cached("SELECT id, url, columns_json FROM items WHERE id >= ?2 AND id < ?3 "
               "ORDER BY id"));
  }
  ScopedReset reset(*select);
  select->BindInt(2, static_cast<std::int64_t>(batch.first_item));
  select->BindInt(3, static_cast<std::int64_t>(batch.end_item));
  std::vector<Record> records;
  // The stored count: the caller's lease.item_count is not trusted with memory.
  records.reserve(batch.end_item - batch.first_item);
  while (true) {
    SLUICE_ASSIGN_OR_RETURN(bool has_row, select->Step());
    if (!has_row) break;
    Record& record = records.emplace_back(static_cast<ItemId>(select->ColumnInt(0)),
                                          std::string(select->ColumnText(1)));
    if (!select->ColumnIsNull(2)) {
      SLUICE_RETURN_IF_ERROR(AddColumnsFromJson(select->ColumnText(2), record));
    }
  }
  select->Reset();
  SLUICE_RETURN_IF_ERROR(transaction.Commit());
  return records;
}

Status SqliteStore::CommitBatch(const Lease& lease, std::span<const ResultRow> results,
                                const std::function<Status()>& publish) {
  std::lock_guard lock(mutex_);
  return CommitBatchLocked(lease, results, publish)
      .WithContext(
          fmt::format("store: commit batch {} of group {}", lease.batch_id, lease.group));
}

Status SqliteStore::CommitBatchLocked(const Lease& lease,
                                      std::span<const ResultRow> results,
                                      const std::function<Status()>& publish) {
  Transaction transaction(*db_);
  SLUICE_RETURN_IF_ERROR(transaction.BeginWrite());
  SLUICE_ASSIGN_OR_RETURN(CurrentBatch batch, CheckLeaseIsCurrent(lease, true));
  // Committed already by this lease: a retry after an unknown outcome.
  if (batch.committed) return Status::Ok();
  const std::int64_t group_id = batch.group_id;

  // Checked before anything is written, against the stored range.
  for (const ResultRow& result : results) {
    if (result.item_id < batch.first_item || result.item_id >= batch.end_item) {
      return Internal(fmt::format("item {} is outside the batch (items {} to {})",
                                  result.item_id, batch.first_item, batch.end_item - 1));
    }
  }

  std::size_t failed_row = results.size();
  Status inserted = insert_results_.Insert(
      *db_, results.size(),
      [&](Statement& insert, int parameter, std::size_t row) {
        const ResultRow& result = results[row];
        insert.BindInt(parameter, group_id);
        insert.BindInt(parameter + 1, static_cast<std::int64_t>(result.item_id));
        insert.BindTextOrNull(parameter + 2,
                              FailureReasonName(result.reason));  // ok: NULL
        insert.BindTextOrNull(parameter + 3, result.error);
        insert.BindTextOrNull(parameter + 4, result.fields_json);
      },
      &failed_row);
  if (inserted.code() == StatusCode::kInternal && failed_row < results.size()) {
    // The primary key (group_id, item_id): the only constraint a result can break.
    return Internal(
        fmt::format("item {} already has a result", results[failed_row].item_id));
  }
  SLUICE_RETURN_IF_ERROR(inserted);

  // FailureReason is a uint8_t enum: one slot per possible value.
  std::array<std::int64_t, 256> per_reason{};
  for (const ResultRow& result : results) {
    ++per_reason[static_cast<std::uint8_t>(result.reason)];
  }
  for (std::size_t reason = 0; reason < per_reason.size(); ++reason) {
    if (per_reason[reason] == 0) continue;
    SLUICE_RETURN_IF_ERROR(
        AddToResultCount(group_id, FailureReasonName(static_cast<FailureReason>(reason)),
                         per_reason[reason]));
  }

  SLUICE_ASSIGN_OR_RETURN(Statement * done,
                          Cached("UPDATE batches SET state = 'done', expires_at_ms = 0 "
                                 "WHERE group_id = ?1 AND batch_id = ?2"));
  ScopedReset reset_done(*done);
  done->BindInt(1, group_id);
  done->BindInt(2, static_cast<std::int64_t>(lease.batch_id));
  SLUICE_RETURN_IF_ERROR(done->Run());

  if (std::optional<std::int64_t> next = NextGroupId(group_id)) {
    // Only a waiting batch: after RetryFailed, the next group may have it already.
    SLUICE_ASSIGN_OR_RETURN(
        Statement * wake,
        Cached("UPDATE batches SET state = 'pending' WHERE group_id = ?1 AND "
               "batch_id = ?2 AND state = 'waiting'"));
    ScopedReset reset_wake(*wake);
    wake->BindInt(1, *next);
    wake->BindInt(2, static_cast<std::int64_t>(lease.batch_id));
    SLUICE_RETURN_IF_ERROR(wake->Run());
  }
  // Last, so that nothing can fail between the outputs' renames and the commit but
  // the commit itself (which leaves an uncommitted batch with complete outputs: it
  // is redone). The write lock is held: nobody can take the batch over meanwhile.
  if (publish) SLUICE_RETURN_IF_ERROR(publish().WithContext("publish outputs"));
  return transaction.Commit();
}

Status SqliteStore::ReleaseBatch(const Lease& lease) {
  std::lock_guard lock(mutex_);
  auto release = [&]() -> Status {
    SLUICE_ASSIGN_OR_RETURN(std::int64_t group_id, GroupId(lease.group));
    Transaction transaction(*db_);
    SLUICE_RETURN_IF_ERROR(transaction.BeginWrite());
    // The token is kept: the next lease increments it, which fences this one.
    SLUICE_ASSIGN_OR_RETURN(
        Statement * update,
        Cached("UPDATE batches SET state = 'pending', owner = NULL, expires_at_ms = 0 "
               "WHERE group_id = ?1 AND batch_id = ?2 AND token = ?3 AND "
               "state = 'leased'"));
    ScopedReset reset(*update);
    update->BindInt(1, group_id);
    update->BindInt(2, static_cast<std::int64_t>(lease.batch_id));
    update->BindInt(3, static_cast<std::int64_t>(lease.token));
    SLUICE_RETURN_IF_ERROR(update->Run());
    return transaction.Commit();
  };
  return release().WithContext(
      fmt::format("store: release batch {} of group {}", lease.batch_id, lease.group));
}

Result<std::optional<std::uint64_t>> SqliteStore::CommittedToken(std::string_view group,
                                                                 BatchId batch) {
  std::lock_guard lock(mutex_);
  auto token = [&]() -> Result<std::optional<std::uint64_t>> {
    SLUICE_ASSIGN_OR_RETURN(std::int64_t group_id, GroupId(group));
    if (group_id == kNoGroup) return std::optional<std::uint64_t>();
    SLUICE_ASSIGN_OR_RETURN(
        Statement * select,
        Cached("SELECT token FROM batches WHERE group_id = ?1 AND batch_id = ?2 AND "
               "state = 'done'"));
    ScopedReset reset(*select);
    select->BindInt(1, group_id);
    select->BindInt(2, static_cast<std::int64_t>(batch));
    SLUICE_ASSIGN_OR_RETURN(bool found, select->Step());
    if (!found) return std::optional<std::uint64_t>();
    return std::optional<std::uint64_t>(static_cast<std::uint64_t>(select->ColumnInt(0)));
  }();
  if (!token.ok()) {
    return token.status().WithContext(
        fmt::format("store: committed token of batch {} of group {}", batch, group));
  }
  return token;
}

Result<std::uint64_t> SqliteStore::ReleaseLeasesOfDeadOwners(
    std::string_view group, const std::function<bool(std::string_view owner)>& is_dead) {
  auto context = [&] {
    return fmt::format("store: release leases of dead owners of group {}", group);
  };
  // The owners are read under the lock, but is_dead() runs without it: it may be slow
  // (it probes processes) and may use the store. A dead owner cannot lease again, so
  // releasing its leases afterwards is still right.
  std::vector<std::string> owners;
  std::int64_t group_id = kNoGroup;
  {
    std::lock_guard lock(mutex_);
    auto read = [&]() -> Status {
      SLUICE_ASSIGN_OR_RETURN(group_id, GroupId(group));
      SLUICE_ASSIGN_OR_RETURN(
          Statement * select,
          Cached("SELECT DISTINCT owner FROM batches INDEXED BY batches_by_state "
                 "WHERE group_id = ?1 AND state = 'leased' AND owner IS NOT NULL"));
      ScopedReset reset(*select);
      select->BindInt(1, group_id);
      while (true) {
        SLUICE_ASSIGN_OR_RETURN(bool has_row, select->Step());
        if (!has_row) return Status::Ok();
        owners.emplace_back(select->ColumnText(0));
      }
    };
    Status status = read();
    if (!status.ok()) return status.WithContext(context());
  }
  std::erase_if(owners, [&](const std::string& owner) { return !is_dead(owner); });
  if (owners.empty()) return std::uint64_t{0};

  std::lock_guard lock(mutex_);
  auto release = [&]() -> Result<std::uint64_t> {
    Transaction transaction(*db_);
    SLUICE_RETURN_IF_ERROR(transaction.BeginWrite());
    SLUICE_ASSIGN_OR_RETURN(
        Statement * update,
        Cached("UPDATE batches INDEXED BY batches_by_state "
               "SET state = 'pending', owner = NULL, expires_at_ms = 0 "
               "WHERE group_id = ?1 AND state = 'leased' AND owner = ?2"));
    ScopedReset reset(*update);
    std::uint64_t released = 0;
    for (const std::string& owner : owners) {
      update->BindInt(1, group_id);
      update->BindText(2, owner);
      SLUICE_RETURN_IF_ERROR(update->Run());
      released += static_cast<std::uint64_t>(update->Changes());
    }
    SLUICE_RETURN_IF_ERROR(transaction.Commit());
    return released;
  };
  auto released = release();
  if (!released.ok()) return released.status().WithContext(context());
  return released;
}

}  // namespace sluice::sqlite
