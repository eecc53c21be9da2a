// Leasing in the PostgreSQL store: lease, renew, read a leased batch, commit, release.
//
// A lease is the row batches(group_id, batch_id) in state 'leased' with its owner,
// token and expiry. One statement picks and marks: FOR UPDATE SKIP LOCKED makes
// concurrent leases pass over each other's rows instead of waiting, and a batch row
// locked by a commit in progress is skipped too, so it cannot be taken over while
// its holder commits. The token grows at every lease; CommitBatch, RenewLeases,
// ReadBatchItems and ReleaseBatch act only while the caller's token is the batch's
// current one and the batch is still leased. An expired lease stays valid until
// someone else takes the batch.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <set>
#include <tuple>
#include <unordered_set>

#include "src/store/item_columns.h"
#include "src/store/postgres_store_internal.h"

namespace sluice::postgres {
namespace {

std::string IdArray(const std::vector<std::int64_t>& ids) {
  std::string text = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) text += ',';
    text += std::to_string(ids[i]);
  }
  return text + "}";
}

}  // namespace

Result<std::vector<Lease>> PostgresStore::LeaseBatches(std::string_view group,
                                                       std::string_view owner,
                                                       std::size_t max_batches,
                                                       std::chrono::milliseconds duration,
                                                       LeasePartition partition) {
  std::lock_guard lock(mutex_);
  auto leases = [&]() -> Result<std::vector<Lease>> {
    SLUICE_RETURN_IF_ERROR(CheckLeasePartition(partition));
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    return LeaseBatchesLocked(*conn, group, owner, max_batches, duration, partition);
  }();
  if (!leases.ok()) {
    return leases.status().WithContext(
        fmt::format("store: lease batches of group {}", group));
  }
  return leases;
}

Result<std::vector<Lease>> PostgresStore::LeaseBatchesLocked(
    pg::PgConn& conn, std::string_view group, std::string_view owner,
    std::size_t max_batches, std::chrono::milliseconds duration,
    LeasePartition partition) {
  std::vector<Lease> leases;
  if (max_batches == 0) return leases;
  SLUICE_ASSIGN_OR_RETURN(std::int64_t group_id, GroupId(conn, group));
  if (group_id == kNoGroup) return leases;  // nothing ingested for it (yet)
  const auto limit =
      static_cast<std::int64_t>(std::min<std::size_t>(max_batches, 1 << 20));

  pg::PgTransaction transaction(conn);
  SLUICE_RETURN_IF_ERROR(transaction.Begin());
  // The clock is read in the statement, once its rows are locked: a lease is judged
  // expired against the time it is actually taken over.
  SLUICE_ASSIGN_OR_RETURN(
      pg::PgResult taken,
      conn.Exec(
          "WITH now AS (SELECT " + NowSql(5) +
              " AS ms), "
              "picked AS ("
              "  SELECT b.batch_id, b.state AS was FROM batches AS b, now"
              "  WHERE b.group_id = $1 AND b.state IN ('pending', 'leased') AND"
              "    b.batch_id % $6 = $7 AND (b.state = 'pending' OR"
              "     (b.expires_at_ms < now.ms AND b.owner IS DISTINCT FROM $2))"
              "  ORDER BY b.batch_id LIMIT $3 FOR UPDATE OF b SKIP LOCKED) "
              "UPDATE batches AS b SET state = 'leased', owner = $2, "
              "  token = b.token + 1, expires_at_ms = now.ms + $4 "
              "FROM picked, now WHERE b.group_id = $1 AND b.batch_id = picked.batch_id "
              "RETURNING b.batch_id, b.token, b.first_item, b.item_count, "
              "  b.expires_at_ms, picked.was",
          {pg::IntParam(group_id), std::string(owner), pg::IntParam(limit),
           pg::IntParam(duration.count()), NowParam(), pg::IntParam(partition.count),
           pg::IntParam(partition.index)}));
  CounterDelta counters;
  leases.reserve(static_cast<std::size_t>(taken.rows()));
  for (int row = 0; row < taken.rows(); ++row) {
    Lease& lease = leases.emplace_back();
    lease.batch_id = static_cast<BatchId>(taken.Int(row, 0));
    lease.group = std::string(group);
    lease.owner = std::string(owner);
    lease.token = static_cast<std::uint64_t>(taken.Int(row, 1));
    lease.first_item = static_cast<ItemId>(taken.Int(row, 2));
    lease.item_count = static_cast<std::uint32_t>(taken.Int(row, 3));
    lease.expires_at_ms = taken.Int(row, 4);
    if (taken.Text(row, 5) == "pending") {
      counters.AddBatch(group_id, "pending", taken.Int(row, 0), -1);
      counters.AddBatch(group_id, "leased", taken.Int(row, 0), 1);
    }
  }
  SLUICE_RETURN_IF_ERROR(counters.Apply(conn));
  SLUICE_RETURN_IF_ERROR(transaction.Commit());
  std::sort(leases.begin(), leases.end(),
            [](const Lease& a, const Lease& b) { return a.batch_id < b.batch_id; });
  return leases;
}

Result<std::vector<BatchId>> PostgresStore::RenewLeases(
    std::span<const Lease> leases, std::chrono::milliseconds duration) {
  std::lock_guard lock(mutex_);
  auto renew = [&]() -> Result<std::vector<BatchId>> {
    std::vector<BatchId> lost;
    if (leases.empty()) return lost;
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    // One statement for all: (group, batch, token) triples as parallel arrays.
    std::vector<std::int64_t> groups, batches, tokens;
    for (const Lease& lease : leases) {
      SLUICE_ASSIGN_OR_RETURN(std::int64_t group_id, GroupId(*conn, lease.group));
      groups.push_back(group_id);
      batches.push_back(static_cast<std::int64_t>(lease.batch_id));
      tokens.push_back(static_cast<std::int64_t>(lease.token));
    }
    SLUICE_ASSIGN_OR_RETURN(
        pg::PgResult renewed,
        conn->Exec("UPDATE batches AS b SET expires_at_ms = " + NowSql(4) +
                       " + $5 FROM unnest($1::integer[], $2::bigint[], $3::bigint[]) "
                       "AS l(group_id, batch_id, token) "
                       "WHERE b.group_id = l.group_id AND b.batch_id = l.batch_id AND "
                       "b.token = l.token AND b.state = 'leased' "
                       "RETURNING b.group_id, b.batch_id, b.token",
                   {IdArray(groups), IdArray(batches), IdArray(tokens), NowParam(),
                    pg::IntParam(duration.count())}));
    std::set<std::tuple<std::int64_t, std::int64_t, std::int64_t>> kept;
    for (int row = 0; row < renewed.rows(); ++row) {
      kept.emplace(renewed.Int(row, 0), renewed.Int(row, 1), renewed.Int(row, 2));
    }
    for (std::size_t i = 0; i < leases.size(); ++i) {
      if (!kept.contains({groups[i], batches[i], tokens[i]})) {
        lost.push_back(leases[i].batch_id);
      }
    }
    return lost;
  };
  auto lost = renew();
  if (!lost.ok()) return lost.status().WithContext("store: renew leases");
  return lost;
}

Result<PostgresStore::CurrentBatch> PostgresStore::CheckLeaseIsCurrent(
    pg::PgConn& conn, const Lease& lease, bool lock, bool accept_committed) {
  SLUICE_ASSIGN_OR_RETURN(std::int64_t group_id, GroupId(conn, lease.group));
  if (group_id == kNoGroup) return NotFound("no such stage group");
  SLUICE_ASSIGN_OR_RETURN(
      pg::PgResult found,
      conn.Exec(std::string("SELECT state, token, first_item, item_count FROM batches "
                            "WHERE group_id = $1 AND batch_id = $2") +
                    (lock ? " FOR UPDATE" : ""),
                {pg::IntParam(group_id),
                 pg::IntParam(static_cast<std::int64_t>(lease.batch_id))}));
  if (found.rows() == 0) return NotFound("no such batch");
  const std::string_view state = found.Text(0, 0);
  const auto token = static_cast<std::uint64_t>(found.Int(0, 1));
  if (token != lease.token) {
    return StaleLease(
        fmt::format("lease token {} is stale (current {})", lease.token, token));
  }
  CurrentBatch batch{group_id, static_cast<ItemId>(found.Int(0, 2)),
                     static_cast<ItemId>(found.Int(0, 2) + found.Int(0, 3))};
  if (accept_committed && state == "done") {
    batch.committed = true;
    return batch;
  }
  if (state != "leased") {
    return StaleLease(fmt::format("lease token {} is stale (the batch is {})",
                                  lease.token, state == "pending" ? "released" : state));
  }
  return batch;
}

Result<std::vector<Record>> PostgresStore::ReadBatchItems(const Lease& lease) {
  std::lock_guard lock(mutex_);
  auto read = [&]() -> Result<std::vector<Record>> {
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    // One snapshot: the items read are those of the lease checked.
    pg::PgTransaction transaction(*conn);
    SLUICE_RETURN_IF_ERROR(transaction.Begin());
    SLUICE_RETURN_IF_ERROR(
        conn->ExecScript("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"));
    SLUICE_ASSIGN_OR_RETURN(CurrentBatch batch, CheckLeaseIsCurrent(*conn, lease, false));
    const std::vector<pg::Param> range = {
        pg::IntParam(batch.group_id),
        pg::IntParam(static_cast<std::int64_t>(batch.first_item)),
        pg::IntParam(static_cast<std::int64_t>(batch.end_item))};
    // Usually no item of the batch has a result yet (it is leased for the first
    // time): one index range probe of results then spares the anti-join, whose plan
    // on a young table may scan all of results.
    SLUICE_ASSIGN_OR_RETURN(
        pg::PgResult any_result,
        conn->Exec("SELECT EXISTS (SELECT 1 FROM results WHERE group_id = $1 AND "
                   "item_id >= $2 AND item_id < $3)",
                   range));
    const bool some_done = any_result.Text(0, 0) == "t";
    SLUICE_ASSIGN_OR_RETURN(
        pg::PgResult rows,
        conn->Exec(some_done
                       ? "SELECT i.id, i.url, i.columns_json FROM items AS i "
                         "WHERE i.id >= $2 AND i.id < $3 AND NOT EXISTS ("
                         "  SELECT 1 FROM results AS r WHERE r.group_id = $1 AND "
                         "  r.item_id = i.id AND r.item_id >= $2 AND r.item_id < $3) "
                         "ORDER BY i.id"
                       : "SELECT i.id, i.url, i.columns_json FROM items AS i "
                         "WHERE i.id >= $2 AND i.id < $3 AND $1::integer IS NOT NULL "
                         "ORDER BY i.id",
                   range));
    std::vector<Record> records;
    records.reserve(static_cast<std::size_t>(rows.rows()));
    for (int row = 0; row < rows.rows(); ++row) {
      Record& record = records.emplace_back(static_cast<ItemId>(rows.Int(row, 0)),
                                            std::string(rows.Text(row, 1)));
      if (!rows.IsNull(row, 2)) {
        SLUICE_RETURN_IF_ERROR(AddColumnsFromJson(rows.Text(row, 2), record));
      }
    }
    SLUICE_RETURN_IF_ERROR(transaction.Commit());
    return records;
  };
  auto records = read();
  if (!records.ok()) {
    return records.status().WithContext(
        fmt::format("store: read batch {} of group {}", lease.batch_id, lease.group));
  }
  return records;
}

Status PostgresStore::CommitBatch(const Lease& lease, std::span<const ResultRow> results,
                                  const std::function<Status()>& publish) {
  std::lock_guard lock(mutex_);
  auto commit = [&]() -> Status {
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    return CommitBatchLocked(*conn, lease, results, publish);
  };
  return commit().WithContext(
      fmt::format("store: commit batch {} of group {}", lease.batch_id, lease.group));
}

Status PostgresStore::CommitBatchLocked(pg::PgConn& conn, const Lease& lease,
                                        std::span<const ResultRow> results,
                                        const std::function<Status()>& publish) {
  pg::PgTransaction transaction(conn);
  SLUICE_RETURN_IF_ERROR(transaction.Begin());
  // The row lock is held to the end: nobody can take the batch over meanwhile.
  SLUICE_ASSIGN_OR_RETURN(CurrentBatch batch,
                          CheckLeaseIsCurrent(conn, lease, true, true));
  // Committed already by this lease: a retry after an unknown outcome.
  if (batch.committed) return Status::Ok();
  const std::int64_t group_id = batch.group_id;
  const auto batch_id = static_cast<std::int64_t>(lease.batch_id);

  // Checked before anything is written: the range, then one result per item (here and
  // against the results of earlier commits of the batch, which exist after a retry).
  for (const ResultRow& result : results) {
    if (result.item_id < batch.first_item || result.item_id >= batch.end_item) {
      return Internal(fmt::format("item {} is outside the batch (items {} to {})",
                                  result.item_id, batch.first_item, batch.end_item - 1));
    }
  }
  SLUICE_ASSIGN_OR_RETURN(
      pg::PgResult earlier,
      conn.Exec("SELECT item_id FROM results WHERE group_id = $1 AND item_id >= $2 AND "
                "item_id < $3",
                {pg::IntParam(group_id),
                 pg::IntParam(static_cast<std::int64_t>(batch.first_item)),
                 pg::IntParam(static_cast<std::int64_t>(batch.end_item))}));
  std::unordered_set<ItemId> seen;
  for (int row = 0; row < earlier.rows(); ++row) {
    seen.insert(static_cast<ItemId>(earlier.Int(row, 0)));
  }
  for (const ResultRow& result : results) {
    if (!seen.insert(result.item_id).second) {
      return Internal(fmt::format("item {} already has a result", result.item_id));
    }
  }

  CounterDelta counters;
  if (!results.empty()) {
    std::string rows;
    rows.reserve(results.size() * 64);
    for (const ResultRow& result : results) {
      pg::CopyRow(rows)
          .Int(group_id)
          .Int(static_cast<std::int64_t>(result.item_id))
          .TextOrNull(FailureReasonName(result.reason))  // ok: NULL
          .TextOrNull(result.error)
          .TextOrNull(result.fields_json);
    }
    SLUICE_RETURN_IF_ERROR(
        conn.CopyIn(
                "COPY results (group_id, item_id, reason, error, fields_json) FROM STDIN",
                rows)
            .ToStatus());
    // FailureReason is a uint8_t enum: one slot per possible value.
    std::array<std::int64_t, 256> per_reason{};
    for (const ResultRow& result : results) {
      ++per_reason[static_cast<std::uint8_t>(result.reason)];
    }
    for (std::size_t reason = 0; reason < per_reason.size(); ++reason) {
      counters.AddResult(group_id, FailureReasonName(static_cast<FailureReason>(reason)),
                         batch_id, per_reason[reason]);
    }
  }

  SLUICE_RETURN_IF_ERROR(conn.Exec("UPDATE batches SET state = 'done', expires_at_ms = 0 "
                                   "WHERE group_id = $1 AND batch_id = $2",
                                   {pg::IntParam(group_id), pg::IntParam(batch_id)})
                             .ToStatus());
  counters.AddBatch(group_id, "leased", batch_id, -1);
  counters.AddBatch(group_id, "done", batch_id, 1);
  if (std::optional<std::int64_t> next = NextGroupId(group_id)) {
    // Only a waiting batch: after RetryFailed, the next group may have it already.
    SLUICE_ASSIGN_OR_RETURN(
        pg::PgResult woken,
        conn.Exec("UPDATE batches SET state = 'pending' WHERE group_id = $1 AND "
                  "batch_id = $2 AND state = 'waiting'",
                  {pg::IntParam(*next), pg::IntParam(batch_id)}));
    if (woken.affected() > 0) {
      counters.AddBatch(*next, "waiting", batch_id, -1);
      counters.AddBatch(*next, "pending", batch_id, 1);
    }
  }
  SLUICE_RETURN_IF_ERROR(counters.Apply(conn));
  // Last, so that nothing can fail between the outputs' renames and the commit but
  // the commit itself (which leaves an uncommitted batch with complete outputs: it
  // is redone).
  if (publish) SLUICE_RETURN_IF_ERROR(publish().WithContext("publish outputs"));
  return transaction.Commit();
}

Result<std::optional<std::uint64_t>> PostgresStore::CommittedToken(std::string_view group,
                                                                   BatchId batch) {
  std::lock_guard lock(mutex_);
  auto token = [&]() -> Result<std::optional<std::uint64_t>> {
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    SLUICE_ASSIGN_OR_RETURN(std::int64_t group_id, GroupId(*conn, group));
    if (group_id == kNoGroup) return std::optional<std::uint64_t>();
    SLUICE_ASSIGN_OR_RETURN(
        pg::PgResult found,
        conn->Exec(
            "SELECT token FROM batches WHERE group_id = $1 AND batch_id = $2 AND "
            "state = 'done'",
            {pg::IntParam(group_id), pg::IntParam(static_cast<std::int64_t>(batch))}));
    if (found.rows() == 0) return std::optional<std::uint64_t>();
    return std::optional<std::uint64_t>(static_cast<std::uint64_t>(found.Int(0, 0)));
  }();
  if (!token.ok()) {
    return token.status().WithContext(
        fmt::format("store: committed token of batch {} of group {}", batch, group));
  }
  return token;
}

Status PostgresStore::ReleaseBatch(const Lease& lease) {
  std::lock_guard lock(mutex_);
  auto release = [&]() -> Status {
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    SLUICE_ASSIGN_OR_RETURN(std::int64_t group_id, GroupId(*conn, lease.group));
    pg::PgTransaction transaction(*conn);
    SLUICE_RETURN_IF_ERROR(transaction.Begin());
    // The token is kept: the next lease increments it, which fences this one.
    SLUICE_ASSIGN_OR_RETURN(
        pg::PgResult released,
        conn->Exec(
            "UPDATE batches SET state = 'pending', owner = NULL, expires_at_ms = 0 "
            "WHERE group_id = $1 AND batch_id = $2 AND token = $3 AND "
            "state = 'leased'",
            {pg::IntParam(group_id),
             pg::IntParam(static_cast<std::int64_t>(lease.batch_id)),
             pg::IntParam(static_cast<std::int64_t>(lease.token))}));
    if (released.affected() > 0) {
      CounterDelta counters;
      counters.AddBatch(group_id, "leased", static_cast<std::int64_t>(lease.batch_id),
                        -1);
      counters.AddBatch(group_id, "pending", static_cast<std::int64_t>(lease.batch_id),
                        1);
      SLUICE_RETURN_IF_ERROR(counters.Apply(*conn));
    }
    return transaction.Commit();
  };
  return release().WithContext(
      fmt::format("store: release batch {} of group {}", lease.batch_id, lease.group));
}

Result<std::uint64_t> PostgresStore::ReleaseLeasesOfDeadOwners(
    std::string_view group, const std::function<bool(std::string_view owner)>& is_dead) {
  auto context = [&] {
    return fmt::format("store: release leases of dead owners of group {}", group);
  };
  // The owners are read under the lock, but is_dead() runs without it: it may be slow
  // (it probes processes) and may use the store.
  std::vector<std::string> owners;
  std::int64_t group_id = kNoGroup;
  {
    std::lock_guard lock(mutex_);
    auto read = [&]() -> Status {
      SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
      SLUICE_ASSIGN_OR_RETURN(group_id, GroupId(*conn, group));
      SLUICE_ASSIGN_OR_RETURN(
          pg::PgResult rows,
          conn->Exec("SELECT DISTINCT owner FROM batches WHERE group_id = $1 AND "
                     "state = 'leased' AND owner IS NOT NULL",
                     {pg::IntParam(group_id)}));
      for (int row = 0; row < rows.rows(); ++row) owners.emplace_back(rows.Text(row, 0));
      return Status::Ok();
    };
    Status status = read();
    if (!status.ok()) return status.WithContext(context());
  }
  std::erase_if(owners, [&](const std::string& owner) { return !is_dead(owner); });
  if (owners.empty()) return std::uint64_t{0};

  std::lock_guard lock(mutex_);
  auto release = [&]() -> Result<std::uint64_t> {
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    pg::PgTransaction transaction(*conn);
    SLUICE_RETURN_IF_ERROR(transaction.Begin());
    std::string names = "{";
    for (std::size_t i = 0; i < owners.size(); ++i) {
      std::string quoted = "\"";
      for (const char c : owners[i]) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += c;
      }
      names += (i ? "," : "") + quoted + "\"";
    }
    names += "}";
    SLUICE_ASSIGN_OR_RETURN(
        pg::PgResult released,
        conn->Exec(
            "UPDATE batches SET state = 'pending', owner = NULL, expires_at_ms = 0 "
            "WHERE group_id = $1 AND state = 'leased' AND owner = ANY($2::text[]) "
            "RETURNING batch_id",
            {pg::IntParam(group_id), names}));
    CounterDelta counters;
    for (int row = 0; row < released.rows(); ++row) {
      counters.AddBatch(group_id, "leased", released.Int(row, 0), -1);
      counters.AddBatch(group_id, "pending", released.Int(row, 0), 1);
    }
    SLUICE_RETURN_IF_ERROR(counters.Apply(*conn));
    SLUICE_RETURN_IF_ERROR(transaction.Commit());
    return static_cast<std::uint64_t>(released.rows());
  };
  auto released = release();
  if (!released.ok()) return released.status().WithContext(context());
  return released;
}

}  // namespace sluice::postgres
