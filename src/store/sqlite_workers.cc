// The SQLite store's worker reports (src/store/worker_reports.h).
#include <fmt/format.h>

#include "src/store/sqlite_store_internal.h"
#include "src/store/worker_reports.h"

namespace sluice::sqlite {

Status SqliteStore::ReportWorker(const WorkerReport& report) {
  std::lock_guard lock(mutex_);
  auto write = [&]() -> Status {
    const std::int64_t now = clock_->NowMs();
    Transaction transaction(*db_);
    SLUICE_RETURN_IF_ERROR(transaction.BeginWrite());
    SLUICE_ASSIGN_OR_RETURN(
        Statement * upsert,
        Cached("INSERT INTO workers (owner, group_name, host, started_ms, updated_ms, "
               "  last_renewal_ms, batches_held, items_committed, items_failed, stopped, "
               "  counters_json, previous_items, previous_ms) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?8, ?5) "
               "ON CONFLICT (owner, group_name) DO UPDATE SET "
               "  previous_items = workers.items_committed, "
               "  previous_ms = workers.updated_ms, host = excluded.host, "
               "  started_ms = excluded.started_ms, updated_ms = excluded.updated_ms, "
               "  last_renewal_ms = excluded.last_renewal_ms, "
               "  batches_held = excluded.batches_held, "
               "  items_committed = excluded.items_committed, "
               "  items_failed = excluded.items_failed, stopped = excluded.stopped, "
               "  counters_json = excluded.counters_json"));
    ScopedReset reset(*upsert);
    upsert->BindText(1, report.owner);
    upsert->BindText(2, report.group);
    upsert->BindText(3, report.host);
    upsert->BindInt(4, report.started_ms);
    upsert->BindInt(5, now);
    upsert->BindInt(6, report.last_renewal_ms);
    upsert->BindInt(7, static_cast<std::int64_t>(report.batches_held));
    upsert->BindInt(8, static_cast<std::int64_t>(report.items_committed));
    upsert->BindInt(9, static_cast<std::int64_t>(report.items_failed));
    upsert->BindInt(10, report.stopped ? 1 : 0);
    upsert->BindTextOrNull(11, report.counters_json);
    SLUICE_RETURN_IF_ERROR(upsert->Run());
    SLUICE_ASSIGN_OR_RETURN(Statement * prune,
                            Cached("DELETE FROM workers WHERE updated_ms < ?1"));
    ScopedReset reset_prune(*prune);
    prune->BindInt(1, now - kWorkerReportKeepMs);
    SLUICE_RETURN_IF_ERROR(prune->Run());
    return transaction.Commit();
  };
  return write().WithContext(fmt::format("store: report of worker {}", report.owner));
}

Result<std::vector<WorkerReport>> SqliteStore::ListWorkers() {
  std::lock_guard lock(mutex_);
  auto list = [&]() -> Result<std::vector<WorkerReport>> {
    SLUICE_ASSIGN_OR_RETURN(
        Statement * select,
        Cached("SELECT owner, group_name, host, started_ms, updated_ms, last_renewal_ms, "
               "  batches_held, items_committed, items_failed, stopped, counters_json, "
               "  previous_items, previous_ms "
               "FROM workers ORDER BY group_name, owner"));
    ScopedReset reset(*select);
    std::vector<WorkerReport> reports;
    for (;;) {
      SLUICE_ASSIGN_OR_RETURN(bool found, select->Step());
      if (!found) break;
      WorkerReport& r = reports.emplace_back();
      r.owner = select->ColumnText(0);
      r.group = select->ColumnText(1);
      r.host = select->ColumnText(2);
      r.started_ms = select->ColumnInt(3);
      r.updated_ms = select->ColumnInt(4);
      r.last_renewal_ms = select->ColumnInt(5);
      r.batches_held = static_cast<std::uint64_t>(select->ColumnInt(6));
      r.items_committed = static_cast<std::uint64_t>(select->ColumnInt(7));
      r.items_failed = static_cast<std::uint64_t>(select->ColumnInt(8));
      r.stopped = select->ColumnInt(9) != 0;
      r.counters_json = select->ColumnText(10);
      r.previous_items = static_cast<std::uint64_t>(select->ColumnInt(11));
      r.previous_ms = select->ColumnInt(12);
    }
    return reports;
  };
  auto reports = list();
  if (!reports.ok()) return reports.status().WithContext("store: list workers");
  return reports;
}

}  // namespace sluice::sqlite
