// Reading the PostgreSQL store as a whole: summary, export, rejected lines, and retry
// of failed items.
//
// Summarize reads the counters (a few dozen rows) and the leased batches whose lease
// expired (few: at most those in flight), never count(*) over results or batches.
// ExportRows and ListRejects stream in chunks read by keyset pagination on the
// primary key, handing each chunk to the callback without the mutex.
#include <fmt/format.h>

#include <map>
#include <set>

#include "src/store/postgres_store_internal.h"

namespace sluice::postgres {
namespace {

constexpr std::int64_t kChunkRows = 1000;

}  // namespace

Result<StoreSummary> PostgresStore::Summarize(std::string_view group) {
  std::lock_guard lock(mutex_);
  auto summary = [&]() -> Result<StoreSummary> {
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    return SummarizeLocked(*conn, group);
  }();
  if (!summary.ok()) {
    return summary.status().WithContext(fmt::format("store: summarize group {}", group));
  }
  return summary;
}

Result<StoreSummary> PostgresStore::SummarizeLocked(pg::PgConn& conn,
                                                    std::string_view group) {
  SLUICE_ASSIGN_OR_RETURN(std::int64_t group_id, GroupId(conn, group));
  pg::PgTransaction transaction(conn);  // one snapshot for all the counts
  SLUICE_RETURN_IF_ERROR(transaction.Begin());
  SLUICE_RETURN_IF_ERROR(
      conn.ExecScript("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"));
  StoreSummary summary;

  // Ids are dense from 1, so the largest is the count.
  SLUICE_ASSIGN_OR_RETURN(pg::PgResult items,
                          conn.Exec("SELECT coalesce(max(id), 0) FROM items"));
  summary.items = static_cast<std::uint64_t>(items.Int(0, 0));

  SLUICE_ASSIGN_OR_RETURN(
      pg::PgResult counters,
      conn.Exec("SELECT group_id, name, sum(count) FROM counters "
                "WHERE group_id = $1 OR group_id = $2 GROUP BY group_id, name",
                {pg::IntParam(group_id), pg::IntParam(kStoreWide)}));
  for (int row = 0; row < counters.rows(); ++row) {
    const std::string_view name = counters.Text(row, 1);
    const std::int64_t count = counters.Int(row, 2);
    if (count <= 0) continue;
    const auto value = static_cast<std::uint64_t>(count);
    if (counters.Int(row, 0) == kStoreWide) {
      if (name == "rejected_lines") summary.rejected_lines = value;
    } else if (name == "batches:done") {
      summary.batches_done += value;
    } else if (name == "batches:leased") {
      summary.batches_leased += value;
    } else if (name == "batches:pending" || name == "batches:waiting") {
      // Waiting for the previous group: nobody works on it, as for pending.
      summary.batches_pending += value;
    } else if (name == "results:") {
      summary.results_ok += value;
    } else if (name == "results:filtered") {
      summary.results_filtered += value;
    } else if (name.starts_with("results:")) {
      summary.failures[std::string(name.substr(8))] = value;
      summary.results_failed += value;
    }
  }
  SLUICE_ASSIGN_OR_RETURN(
      pg::PgResult expired,
      conn.Exec("SELECT count(*) FROM batches WHERE group_id = $1 AND state = 'leased' "
                "AND expires_at_ms < " +
                    NowSql(2),
                {pg::IntParam(group_id), NowParam()}));
  const auto expired_count =
      std::min(static_cast<std::uint64_t>(expired.Int(0, 0)), summary.batches_leased);
  summary.batches_leased -= expired_count;  // an expired lease is as good as pending
  summary.batches_pending += expired_count;

  SLUICE_ASSIGN_OR_RETURN(
      pg::PgResult inputs,
      conn.Exec("SELECT count(*), count(*) FILTER (WHERE complete) FROM inputs"));
  summary.inputs = static_cast<std::uint64_t>(inputs.Int(0, 0));
  summary.inputs_complete = static_cast<std::uint64_t>(inputs.Int(0, 1));
  SLUICE_RETURN_IF_ERROR(transaction.Commit());
  return summary;
}

Status PostgresStore::ExportRows(std::string_view group,
                                 const std::function<Status(const ExportRow& row)>& row) {
  const std::string context = fmt::format("store: export group {}", group);
  std::vector<ExportRow> chunk;  // reused: its strings keep their capacity
  std::size_t size = 0;
  std::int64_t after = 0;  // the last id handed out
  do {
    {
      std::lock_guard lock(mutex_);
      auto read = [&]() -> Status {
        SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
        SLUICE_ASSIGN_OR_RETURN(std::int64_t group_id, GroupId(*conn, group));
        SLUICE_ASSIGN_OR_RETURN(
            pg::PgResult rows,
            conn->Exec(
                "SELECT i.id, i.url, i.columns_json, r.item_id IS NOT NULL, "
                "r.reason, r.error, r.fields_json FROM items AS i "
                "LEFT JOIN results AS r ON r.group_id = $1 AND r.item_id = i.id "
                "WHERE i.id > $2 ORDER BY i.id LIMIT $3",
                {pg::IntParam(group_id), pg::IntParam(after), pg::IntParam(kChunkRows)}));
        size = 0;
        for (int i = 0; i < rows.rows(); ++i) {
          if (size == chunk.size()) chunk.emplace_back();
          ExportRow& out = chunk[size++];
          out.id = static_cast<ItemId>(rows.Int(i, 0));
          out.url = rows.Text(i, 1);
          out.columns_json = rows.Text(i, 2);
          out.has_result = rows.Text(i, 3) == "t";
          const std::string_view reason = rows.Text(i, 4);
          if (reason.empty()) {
            out.reason = FailureReason::kNone;
          } else if (auto parsed = ParseFailureReason(reason)) {
            out.reason = *parsed;
          } else {
            return Corruption(
                fmt::format("item {}: unknown failure reason '{}'", out.id, reason));
          }
          out.error = rows.Text(i, 5);
          out.fields_json = rows.Text(i, 6);
          after = rows.Int(i, 0);
        }
        return Status::Ok();
      };
      SLUICE_RETURN_IF_ERROR(read().WithContext(context));
    }
    for (std::size_t i = 0; i < size; ++i) SLUICE_RETURN_IF_ERROR(row(chunk[i]));
  } while (size == static_cast<std::size_t>(kChunkRows));
  return Status::Ok();
}

Status PostgresStore::ListRejects(
    const std::function<Status(std::string_view path, const RejectedLine&)>& reject) {
  struct Row {
    std::string path;
    RejectedLine line;
  };
  std::vector<Row> chunk;
  std::int64_t after_input = 0;
  std::int64_t after_line = 0;
  do {
    chunk.clear();
    {
      std::lock_guard lock(mutex_);
      auto read = [&]() -> Status {
        SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
        SLUICE_ASSIGN_OR_RETURN(
            pg::PgResult rows,
            conn->Exec(
                "SELECT r.input_id, r.line, r.reason, r.excerpt, i.first_path "
                "FROM rejected_lines AS r LEFT JOIN inputs AS i ON i.id = r.input_id "
                "WHERE (r.input_id, r.line) > ($1, $2) "
                "ORDER BY r.input_id, r.line LIMIT $3",
                {pg::IntParam(after_input), pg::IntParam(after_line),
                 pg::IntParam(kChunkRows)}));
        for (int i = 0; i < rows.rows(); ++i) {
          after_input = rows.Int(i, 0);
          after_line = rows.Int(i, 1);
          chunk.push_back(Row{
              std::string(rows.Text(i, 4)),
              RejectedLine{static_cast<std::uint64_t>(after_line),
                           std::string(rows.Text(i, 2)), std::string(rows.Text(i, 3))}});
        }
        return Status::Ok();
      };
      SLUICE_RETURN_IF_ERROR(read().WithContext("store: list rejects"));
    }
    for (const Row& row : chunk) SLUICE_RETURN_IF_ERROR(reject(row.path, row.line));
  } while (chunk.size() == static_cast<std::size_t>(kChunkRows));
  return Status::Ok();
}

Result<std::uint64_t> PostgresStore::RetryFailed(std::string_view group,
                                                 std::optional<FailureReason> reason) {
  std::lock_guard lock(mutex_);
  auto put_back = [&]() -> Result<std::uint64_t> {
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    return RetryFailedLocked(*conn, group, reason);
  }();
  if (!put_back.ok()) {
    return put_back.status().WithContext(
        fmt::format("store: retry failed items of group {}", group));
  }
  return put_back;
}

Result<std::uint64_t> PostgresStore::RetryFailedLocked(
    pg::PgConn& conn, std::string_view group, std::optional<FailureReason> reason) {
  if (reason == FailureReason::kNone) {
    return InvalidArgument("'ok' is not a failure reason");
  }
  SLUICE_ASSIGN_OR_RETURN(std::int64_t group_id, GroupId(conn, group));
  if (group_id == kNoGroup) return std::uint64_t{0};
  // An empty name matches every failure.
  const std::string reason_name(reason ? FailureReasonName(*reason) : "");

  pg::PgTransaction transaction(conn);
  SLUICE_RETURN_IF_ERROR(transaction.Begin());
  // The failed items and their batches (the one with the largest first_item at or
  // below the item), in a table of this transaction's own.
  SLUICE_RETURN_IF_ERROR(
      conn.Exec("CREATE TEMP TABLE retry_items ON COMMIT DROP AS "
                "SELECT r.item_id, b.batch_id FROM results AS r "
                "CROSS JOIN LATERAL (SELECT batch_id FROM batches "
                "  WHERE group_id = $1 AND first_item <= r.item_id "
                "  ORDER BY first_item DESC LIMIT 1) AS b "
                "WHERE r.group_id = $1 AND r.reason IS NOT NULL AND "
                "(($2 = '' AND r.reason <> 'filtered') OR r.reason = $2)",
                {pg::IntParam(group_id), reason_name})
          .ToStatus());
  // A batch between two groups (pending or leased in a group after the first) is
  // left as it is: the next group is about to read the payload of the group before,
  // which holds only the items that group redid last. Its failures can be retried
  // once the batch is through. (With one group there is no such batch.)
  SLUICE_RETURN_IF_ERROR(
      conn.Exec("DELETE FROM retry_items AS t USING batches AS b "
                "WHERE b.group_id > 0 AND b.batch_id = t.batch_id AND "
                "b.state IN ('pending', 'leased')")
          .ToStatus());
  SLUICE_ASSIGN_OR_RETURN(pg::PgResult listed,
                          conn.Exec("SELECT DISTINCT batch_id FROM retry_items"));
  std::string ids = "{";
  for (int row = 0; row < listed.rows(); ++row) {
    ids += (ids.size() > 1 ? "," : "") + std::to_string(listed.Int(row, 0));
  }
  ids += "}";

  SLUICE_ASSIGN_OR_RETURN(std::vector<std::uint64_t> erased, RedoItemsLocked(conn, ids));
  const std::uint64_t put_back = erased[static_cast<std::size_t>(group_id)];
  SLUICE_RETURN_IF_ERROR(transaction.Commit());
  return put_back;
}

Result<std::vector<std::uint64_t>> PostgresStore::RedoItemsLocked(pg::PgConn& conn,
                                                                  const std::string& ids) {
  const auto group_count = static_cast<std::int64_t>(group_names_.size());
  // The items are redone from the first group on, whatever group they failed in: a
  // group reads what the group before it made of a batch from the payload of its
  // commit (src/core/worker.h), and that payload is gone once the batch is through.
  // So their results go in every group (each counted under its reason and its
  // batch's shard), and their batches become pending in the first group and wait for
  // it in the others. A leased batch goes back too: its holder read its items before
  // the deletion and would not redo them; with the state no longer 'leased', its
  // commit is refused and the batch is redone whole.
  CounterDelta counters;
  std::vector<std::uint64_t> erased_per_group(static_cast<std::size_t>(group_count), 0);
  for (std::int64_t each = 0; each < group_count; ++each) {
    SLUICE_ASSIGN_OR_RETURN(
        pg::PgResult erased,
        conn.Exec("WITH gone AS ("
                  "  DELETE FROM results AS r USING retry_items AS t "
                  "  WHERE r.group_id = $1 AND r.item_id = t.item_id "
                  "  RETURNING t.batch_id, coalesce(r.reason, '') AS reason) "
                  "SELECT batch_id, reason, count(*) FROM gone GROUP BY batch_id, reason",
                  {pg::IntParam(each)}));
    for (int row = 0; row < erased.rows(); ++row) {
      const std::int64_t count = erased.Int(row, 2);
      counters.AddResult(each, erased.Text(row, 1), erased.Int(row, 0), -count);
      erased_per_group[static_cast<std::size_t>(each)] += static_cast<std::uint64_t>(count);
    }
    const std::string_view to = each == 0 ? "pending" : "waiting";
    SLUICE_ASSIGN_OR_RETURN(
        pg::PgResult moved,
        conn.Exec(fmt::format(
                      "WITH old AS (SELECT batch_id, state FROM batches WHERE group_id = $1 "
                      "  AND batch_id = ANY($2::bigint[]) AND state IN ('done', 'leased') "
                      "  FOR UPDATE) "
                      "UPDATE batches AS b SET state = '{}', owner = NULL, expires_at_ms = 0 "
                      "FROM old WHERE b.group_id = $1 AND b.batch_id = old.batch_id "
                      "RETURNING b.batch_id, old.state",
                      to),
                  {pg::IntParam(each), ids}));
    for (int row = 0; row < moved.rows(); ++row) {
      counters.AddBatch(each, moved.Text(row, 1), moved.Int(row, 0), -1);
      counters.AddBatch(each, to, moved.Int(row, 0), 1);
    }
  }
  SLUICE_RETURN_IF_ERROR(counters.Apply(conn));
  return erased_per_group;
}

Status PostgresStore::RedoFromFirstGroup(const Lease& lease) {
  std::lock_guard lock(mutex_);
  auto redo = [&]() -> Status {
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    pg::PgTransaction transaction(*conn);
    SLUICE_RETURN_IF_ERROR(transaction.Begin());
    SLUICE_ASSIGN_OR_RETURN(CurrentBatch batch, CheckLeaseIsCurrent(*conn, lease, true));
    SLUICE_RETURN_IF_ERROR(
        conn->Exec("CREATE TEMP TABLE retry_items ON COMMIT DROP AS "
                   "SELECT i.id AS item_id, $4::bigint AS batch_id FROM items AS i "
                   "WHERE i.id >= $2 AND i.id < $3 AND NOT EXISTS "
                   "(SELECT 1 FROM results AS r WHERE r.group_id = $1 AND r.item_id = i.id)",
                   {pg::IntParam(batch.group_id),
                    pg::IntParam(static_cast<std::int64_t>(batch.first_item)),
                    pg::IntParam(static_cast<std::int64_t>(batch.end_item)),
                    pg::IntParam(static_cast<std::int64_t>(lease.batch_id))})
            .ToStatus());
    SLUICE_RETURN_IF_ERROR(
        RedoItemsLocked(*conn, "{" + std::to_string(lease.batch_id) + "}").ToStatus());
    return transaction.Commit();
  };
  return redo().WithContext(
      fmt::format("store: redo batch {} from the first group", lease.batch_id));
}

}  // namespace sluice::postgres
