// Reading the SQLite store as a whole: summary, export, rejected lines, and retry of
// failed items.
//
// ExportRows and ListRejects stream: they read a bounded chunk under the mutex (keyset
// pagination on the primary key, so each chunk is an index range scan), then hand the
// chunk to the callback without the mutex. Memory stays bounded whatever the store's
// size, other threads are not blocked by a long export, and no read transaction is
// held open across the whole export (which would keep the WAL from being
// checkpointed). Rows committed during an export may or may not be seen.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "src/store/sqlite_schema.h"
#include "src/store/sqlite_store_internal.h"

namespace sluice::sqlite {
namespace {

constexpr std::int64_t kChunkRows = 1000;

}  // namespace

Result<StoreSummary> SqliteStore::Summarize(std::string_view group) {
  std::lock_guard lock(mutex_);
  auto summary = SummarizeLocked(group);
  if (!summary.ok()) {
    return summary.status().WithContext(fmt::format("store: summarize group {}", group));
  }
  return summary;
}

Result<StoreSummary> SqliteStore::SummarizeLocked(std::string_view group) {
  SLUICE_ASSIGN_OR_RETURN(std::int64_t group_id, GroupId(group));
  Transaction transaction(*db_);  // one snapshot for all the counts
  SLUICE_RETURN_IF_ERROR(transaction.BeginRead());
  const std::int64_t now = clock_->NowMs();
  StoreSummary summary;

  // Ids are dense from 1, so the largest is the count (count(*) would scan the table).
  SLUICE_ASSIGN_OR_RETURN(Statement * items,
                          Cached("SELECT coalesce(max(id), 0) FROM items"));
  ScopedReset reset_items(*items);
  SLUICE_RETURN_IF_ERROR(items->Step().ToStatus());
  summary.items = static_cast<std::uint64_t>(items->ColumnInt(0));

  // Both batch counts read only the state index (no row lookups), except for the
  // few leased batches whose expiry must be read.
  SLUICE_ASSIGN_OR_RETURN(
      Statement * batches,
      Cached("SELECT state, count(*) FROM batches INDEXED BY batches_by_state "
             "WHERE group_id = ?1 GROUP BY state"));
  ScopedReset reset_batches(*batches);
  batches->BindInt(1, group_id);
  while (true) {
    SLUICE_ASSIGN_OR_RETURN(bool has_row, batches->Step());
    if (!has_row) break;
    const std::string_view state = batches->ColumnText(0);
    const auto count = static_cast<std::uint64_t>(batches->ColumnInt(1));
    if (state == kDone) {
      summary.batches_done += count;
    } else if (state == kLeased) {
      summary.batches_leased += count;
    } else {  // pending, or waiting for the previous group: nobody works on it
      summary.batches_pending += count;
    }
  }
  SLUICE_ASSIGN_OR_RETURN(
      Statement * expired,
      Cached("SELECT count(*) FROM batches INDEXED BY batches_by_state "
             "WHERE group_id = ?1 AND state = 'leased' AND expires_at_ms < ?2"));
  ScopedReset reset_expired(*expired);
  expired->BindInt(1, group_id);
  expired->BindInt(2, now);
  SLUICE_RETURN_IF_ERROR(expired->Step().ToStatus());
  const auto expired_count = static_cast<std::uint64_t>(expired->ColumnInt(0));
  summary.batches_leased -= expired_count;  // an expired lease is as good as pending
  summary.batches_pending += expired_count;

  SLUICE_ASSIGN_OR_RETURN(
      Statement * results,
      Cached(
          "SELECT reason, count FROM result_counts WHERE group_id = ?1 AND count > 0"));
  ScopedReset reset_results(*results);
  results->BindInt(1, group_id);
  while (true) {
    SLUICE_ASSIGN_OR_RETURN(bool has_row, results->Step());
    if (!has_row) break;
    const std::string_view reason = results->ColumnText(0);
    const auto count = static_cast<std::uint64_t>(results->ColumnInt(1));
    if (reason.empty()) {
      summary.results_ok += count;
    } else if (reason == "filtered") {
      summary.results_filtered += count;
    } else {
      summary.failures[std::string(reason)] = count;
      summary.results_failed += count;
    }
  }

  SLUICE_ASSIGN_OR_RETURN(Statement * rejects,
                          Cached("SELECT count(*) FROM rejected_lines"));
  ScopedReset reset_rejects(*rejects);
  SLUICE_RETURN_IF_ERROR(rejects->Step().ToStatus());
  summary.rejected_lines = static_cast<std::uint64_t>(rejects->ColumnInt(0));

  SLUICE_ASSIGN_OR_RETURN(
      Statement * inputs,
      Cached("SELECT count(*), coalesce(sum(complete), 0) FROM inputs"));
  ScopedReset reset_inputs(*inputs);
  SLUICE_RETURN_IF_ERROR(inputs->Step().ToStatus());
  summary.inputs = static_cast<std::uint64_t>(inputs->ColumnInt(0));
  summary.inputs_complete = static_cast<std::uint64_t>(inputs->ColumnInt(1));

  SLUICE_RETURN_IF_ERROR(transaction.Commit());
  return summary;
}

Status SqliteStore::ExportRows(std::string_view group,
                               const std::function<Status(const ExportRow& row)>& row) {
  const std::string context = fmt::format("store: export group {}", group);
  std::vector<ExportRow> chunk;  // reused: its strings keep their capacity
  std::size_t size = 0;
  std::int64_t after = 0;  // the last id handed out
  do {
    {
      std::lock_guard lock(mutex_);
      auto read = [&]() -> Status {
        SLUICE_ASSIGN_OR_RETURN(std::int64_t group_id, GroupId(group));
        SLUICE_ASSIGN_OR_RETURN(
            Statement * select,
            Cached("SELECT i.id, i.url, i.columns_json, r.item_id IS NOT NULL, r.reason, "
                   "r.error, r.fields_json FROM items AS i LEFT JOIN results AS r "
                   "ON r.group_id = ?1 AND r.item_id = i.id "
                   "WHERE i.id > ?2 ORDER BY i.id LIMIT ?3"));
        ScopedReset reset(*select);
        select->BindInt(1, group_id);
        select->BindInt(2, after);
        select->BindInt(3, kChunkRows);
        size = 0;
        while (true) {
          SLUICE_ASSIGN_OR_RETURN(bool has_row, select->Step());
          if (!has_row) return Status::Ok();
          if (size == chunk.size()) chunk.emplace_back();
          ExportRow& out = chunk[size++];
          out.id = static_cast<ItemId>(select->ColumnInt(0));
          out.url = select->ColumnText(1);
          out.columns_json = select->ColumnText(2);
          out.has_result = select->ColumnInt(3) != 0;
          const std::string_view reason = select->ColumnText(4);
          if (reason.empty()) {
            out.reason = FailureReason::kNone;
          } else if (auto parsed = ParseFailureReason(reason)) {
            out.reason = *parsed;
          } else {
            return Corruption(
                fmt::format("item {}: unknown failure reason '{}'", out.id, reason));
          }
          out.error = select->ColumnText(5);
          out.fields_json = select->ColumnText(6);
          after = select->ColumnInt(0);
        }
      };
      SLUICE_RETURN_IF_ERROR(read().WithContext(context));
    }
    for (std::size_t i = 0; i < size; ++i) SLUICE_RETURN_IF_ERROR(row(chunk[i]));
  } while (size == static_cast<std::size_t>(kChunkRows));
  return Status::Ok();
}

Status SqliteStore::ListRejects(
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
        SLUICE_ASSIGN_OR_RETURN(
            Statement * select,
            Cached("SELECT r.input_id, r.line, r.reason, r.excerpt, i.first_path "
                   "FROM rejected_lines AS r LEFT JOIN inputs AS i ON i.id = r.input_id "
                   "WHERE (r.input_id, r.line) > (?1, ?2) "
                   "ORDER BY r.input_id, r.line LIMIT ?3"));
        ScopedReset reset(*select);
        select->BindInt(1, after_input);
        select->BindInt(2, after_line);
        select->BindInt(3, kChunkRows);
        while (true) {
          SLUICE_ASSIGN_OR_RETURN(bool has_row, select->Step());
          if (!has_row) return Status::Ok();
          after_input = select->ColumnInt(0);
          after_line = select->ColumnInt(1);
          chunk.push_back(Row{std::string(select->ColumnText(4)),
                              RejectedLine{static_cast<std::uint64_t>(after_line),
                                           std::string(select->ColumnText(2)),
                                           std::string(select->ColumnText(3))}});
        }
      };
      SLUICE_RETURN_IF_ERROR(read().WithContext("store: list rejects"));
    }
    for (const Row& row : chunk) SLUICE_RETURN_IF_ERROR(reject(row.path, row.line));
  } while (chunk.size() == static_cast<std::size_t>(kChunkRows));
  return Status::Ok();
}

Result<std::uint64_t> SqliteStore::RetryFailed(std::string_view group,
                                               std::optional<FailureReason> reason) {
  std::lock_guard lock(mutex_);
  auto put_back = RetryFailedLocked(group, reason);
  if (!put_back.ok()) {
    return put_back.status().WithContext(
        fmt::format("store: retry failed items of group {}", group));
  }
  return put_back;
}

Result<std::uint64_t> SqliteStore::RetryFailedLocked(
    std::string_view group, std::optional<FailureReason> reason) {
  if (reason == FailureReason::kNone) {
    return InvalidArgument("'ok' is not a failure reason");
  }
  SLUICE_ASSIGN_OR_RETURN(std::int64_t group_id, GroupId(group));
  if (group_id == kNoGroup) return std::uint64_t{0};
  // An empty name matches every failure (see the WHERE clauses below).
  const std::string_view reason_name = reason ? FailureReasonName(*reason) : "";

  Transaction transaction(*db_);
  SLUICE_RETURN_IF_ERROR(transaction.BeginWrite());
  SLUICE_RETURN_IF_ERROR(CreateRetryItems());

  // The failed items and their batches. INDEXED BY: the failed rows are few beside
  // the ok ones, but without statistics SQLite would scan them all. Items come in id
  // order, so consecutive items mostly fall in the batch found last and need no
  // lookup.
  std::vector<std::int64_t> batch_ids;
  {
    SLUICE_ASSIGN_OR_RETURN(
        Statement * failed,
        Cached("SELECT item_id FROM results INDEXED BY results_failed "
               "WHERE group_id = ?1 AND reason IS NOT NULL AND reason <> '' AND "
               "((?2 = '' AND reason <> 'filtered') OR reason = ?2) "
               "ORDER BY item_id"));
    ScopedReset reset_failed(*failed);
    SLUICE_ASSIGN_OR_RETURN(Statement * batch_of,
                            Cached("SELECT batch_id, first_item, item_count FROM batches "
                                   "WHERE group_id = ?1 AND first_item <= ?2 "
                                   "ORDER BY first_item DESC LIMIT 1"));
    ScopedReset reset_batch_of(*batch_of);
    SLUICE_ASSIGN_OR_RETURN(
        Statement * keep,
        Cached("INSERT INTO temp.retry_items (item_id, batch_id) VALUES (?1, ?2)"));
    ScopedReset reset_keep(*keep);
    failed->BindInt(1, group_id);
    failed->BindText(2, reason_name);
    std::int64_t batch_end = 0;  // one past the last item of the batch found last
    while (true) {
      SLUICE_ASSIGN_OR_RETURN(bool has_row, failed->Step());
      if (!has_row) break;
      const std::int64_t item = failed->ColumnInt(0);
      if (batch_ids.empty() || item >= batch_end) {
        batch_of->BindInt(1, group_id);
        batch_of->BindInt(2, item);
        SLUICE_ASSIGN_OR_RETURN(bool found, batch_of->Step());
        if (!found) return Corruption(fmt::format("item {} is in no batch", item));
        batch_ids.push_back(batch_of->ColumnInt(0));
        batch_end = batch_of->ColumnInt(1) + batch_of->ColumnInt(2);
        batch_of->Reset();
      }
      keep->BindInt(1, item);
      keep->BindInt(2, batch_ids.back());
      SLUICE_RETURN_IF_ERROR(keep->Run());
    }
  }

  // A batch between two groups (pending or leased in a group after the first) is
  // left as it is: the next group is about to read the payload of the group before,
  // which holds only the items that group redid last. Its failures can be retried
  // once the batch is through. (With one group there is no such batch.)
  std::set<std::int64_t> batches(batch_ids.begin(), batch_ids.end());
  {
    SLUICE_ASSIGN_OR_RETURN(
        Statement * in_progress,
        Cached("SELECT 1 FROM batches WHERE group_id > 0 AND batch_id = ?1 AND "
               "state IN ('pending', 'leased') LIMIT 1"));
    ScopedReset reset_in_progress(*in_progress);
    SLUICE_ASSIGN_OR_RETURN(
        Statement * leave,
        Cached("DELETE FROM temp.retry_items WHERE batch_id = ?1"));
    ScopedReset reset_leave(*leave);
    for (auto it = batches.begin(); it != batches.end();) {
      in_progress->BindInt(1, *it);
      SLUICE_ASSIGN_OR_RETURN(bool between, in_progress->Step());
      in_progress->Reset();
      if (!between) {
        ++it;
        continue;
      }
      leave->BindInt(1, *it);
      SLUICE_RETURN_IF_ERROR(leave->Run());
      it = batches.erase(it);
    }
  }

  SLUICE_ASSIGN_OR_RETURN(std::vector<std::uint64_t> erased, RedoItemsLocked(batches));
  const std::uint64_t put_back = erased[static_cast<std::size_t>(group_id)];
  SLUICE_RETURN_IF_ERROR(transaction.Commit());
  return put_back;
}

Result<std::vector<std::uint64_t>> SqliteStore::RedoItemsLocked(
    const std::set<std::int64_t>& batches) {
  const auto group_count = static_cast<std::int64_t>(group_names_.size());
  // The items are redone from the first group on, whatever group they failed in: a
  // group reads what the group before it made of a batch from the payload of its
  // commit (src/core/worker.h), and that payload is gone once the batch is through.
  // So their results go in every group, and their batches become pending in the
  // first group and wait for it in the others. A leased batch goes back too: its
  // holder read its items before the deletion and would not redo them; with the
  // state no longer 'leased', its commit is refused and the batch is redone whole.
  std::vector<std::uint64_t> erased_per_group(static_cast<std::size_t>(group_count), 0);
  SLUICE_ASSIGN_OR_RETURN(
      Statement * count,
      Cached("SELECT coalesce(r.reason, ''), count(*) FROM temp.retry_items AS t "
             "JOIN results AS r ON r.group_id = ?1 AND r.item_id = t.item_id "
             "GROUP BY 1"));
  ScopedReset reset_count(*count);
  SLUICE_ASSIGN_OR_RETURN(
      Statement * erase,
      Cached("DELETE FROM results WHERE group_id = ?1 AND "
             "item_id IN (SELECT item_id FROM temp.retry_items)"));
  ScopedReset reset_erase(*erase);
  SLUICE_ASSIGN_OR_RETURN(
      Statement * reopen,
      Cached("UPDATE batches SET state = 'pending', owner = NULL, expires_at_ms = 0 "
             "WHERE group_id = ?1 AND batch_id = ?2 AND state IN ('done', 'leased')"));
  ScopedReset reset_reopen(*reopen);
  SLUICE_ASSIGN_OR_RETURN(
      Statement * wait,
      Cached("UPDATE batches SET state = 'waiting', owner = NULL, expires_at_ms = 0 "
             "WHERE group_id = ?1 AND batch_id = ?2 AND state IN ('done', 'leased')"));
  ScopedReset reset_wait(*wait);
  for (std::int64_t each = 0; each < group_count; ++each) {
    std::map<std::string, std::int64_t> erased_by_reason;
    count->BindInt(1, each);
    while (true) {
      SLUICE_ASSIGN_OR_RETURN(bool has_row, count->Step());
      if (!has_row) break;
      erased_by_reason[std::string(count->ColumnText(0))] += count->ColumnInt(1);
    }
    for (const auto& [reason_text, erased] : erased_by_reason) {
      SLUICE_RETURN_IF_ERROR(AddToResultCount(each, reason_text, -erased));
    }
    erase->BindInt(1, each);
    SLUICE_RETURN_IF_ERROR(erase->Run());
    erased_per_group[static_cast<std::size_t>(each)] =
        static_cast<std::uint64_t>(erase->Changes());
    Statement* move = each == 0 ? reopen : wait;
    for (std::int64_t batch_id : batches) {
      move->BindInt(1, each);
      move->BindInt(2, batch_id);
      SLUICE_RETURN_IF_ERROR(move->Run());
    }
  }
  SLUICE_RETURN_IF_ERROR(db_->Exec("DELETE FROM temp.retry_items"));
  return erased_per_group;
}

Status SqliteStore::RedoFromFirstGroup(const Lease& lease) {
  std::lock_guard lock(mutex_);
  auto redo = [&]() -> Status {
    Transaction transaction(*db_);
    SLUICE_RETURN_IF_ERROR(transaction.BeginWrite());
    SLUICE_ASSIGN_OR_RETURN(CurrentBatch batch, CheckLeaseIsCurrent(lease));
    SLUICE_RETURN_IF_ERROR(CreateRetryItems());
    SLUICE_ASSIGN_OR_RETURN(
        Statement * keep,
        Cached("INSERT INTO temp.retry_items (item_id, batch_id) "
               "SELECT id, ?4 FROM items WHERE id >= ?2 AND id < ?3 AND NOT EXISTS "
               "(SELECT 1 FROM results WHERE group_id = ?1 AND item_id = items.id)"));
    ScopedReset reset_keep(*keep);
    keep->BindInt(1, batch.group_id);
    keep->BindInt(2, static_cast<std::int64_t>(batch.first_item));
    keep->BindInt(3, static_cast<std::int64_t>(batch.end_item));
    keep->BindInt(4, static_cast<std::int64_t>(lease.batch_id));
    SLUICE_RETURN_IF_ERROR(keep->Run());
    SLUICE_RETURN_IF_ERROR(
        RedoItemsLocked({static_cast<std::int64_t>(lease.batch_id)}).ToStatus());
    return transaction.Commit();
  };
  return redo().WithContext(fmt::format("store: redo batch {} from the first group",
                                        lease.batch_id));
}

Status SqliteStore::CreateRetryItems() {
  // The items to redo, kept in the connection's temporary database for the
  // statements of RedoItemsLocked, and emptied before the commit.
  SLUICE_RETURN_IF_ERROR(
      db_->Exec("CREATE TEMP TABLE IF NOT EXISTS retry_items "
                "(item_id INTEGER PRIMARY KEY, batch_id INTEGER NOT NULL)"));
  return db_->Exec("DELETE FROM temp.retry_items");
}

}  // namespace sluice::sqlite
