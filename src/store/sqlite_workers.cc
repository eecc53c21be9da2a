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
    // A sample when none is this recent (the first report's too), and the last.
    SLUICE_ASSIGN_OR_RETURN(
        Statement * sample,
        Cached("INSERT OR REPLACE INTO worker_samples (owner, group_name, at_ms, "
               "  items_committed, items_failed, counters_json) "
               "SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE ?7 OR NOT EXISTS ("
               "  SELECT 1 FROM worker_samples WHERE owner = ?1 AND group_name = ?2 "
               "  AND at_ms > ?3 - ?8)"));
    ScopedReset reset_sample(*sample);
    sample->BindText(1, report.owner);
    sample->BindText(2, report.group);
    sample->BindInt(3, now);
    sample->BindInt(4, static_cast<std::int64_t>(report.items_committed));
    sample->BindInt(5, static_cast<std::int64_t>(report.items_failed));
    sample->BindTextOrNull(6, report.sample_json);
    sample->BindInt(7, report.stopped ? 1 : 0);
    sample->BindInt(8, kWorkerSampleEveryMs);
    SLUICE_RETURN_IF_ERROR(sample->Run());
    SLUICE_ASSIGN_OR_RETURN(Statement * prune,
                            Cached("DELETE FROM workers WHERE updated_ms < ?1"));
    ScopedReset reset_prune(*prune);
    prune->BindInt(1, now - kWorkerReportKeepMs);
    SLUICE_RETURN_IF_ERROR(prune->Run());
    SLUICE_ASSIGN_OR_RETURN(Statement * prune_samples,
                            Cached("DELETE FROM worker_samples WHERE at_ms < ?1"));
    ScopedReset reset_prune_samples(*prune_samples);
    prune_samples->BindInt(1, now - kWorkerSampleKeepMs);
    SLUICE_RETURN_IF_ERROR(prune_samples->Run());
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

Result<std::vector<WorkerSample>> SqliteStore::ListSamples(std::string_view group) {
  std::lock_guard lock(mutex_);
  auto list = [&]() -> Result<std::vector<WorkerSample>> {
    SLUICE_ASSIGN_OR_RETURN(
        Statement * select,
        Cached("SELECT owner, group_name, at_ms, items_committed, items_failed, "
               "  counters_json FROM worker_samples "
               "WHERE ?1 = '' OR group_name = ?1 ORDER BY at_ms, owner, group_name"));
    ScopedReset reset(*select);
    select->BindText(1, group);
    std::vector<WorkerSample> samples;
    for (;;) {
      SLUICE_ASSIGN_OR_RETURN(bool found, select->Step());
      if (!found) break;
      WorkerSample& s = samples.emplace_back();
      s.owner = select->ColumnText(0);
      s.group = select->ColumnText(1);
      s.at_ms = select->ColumnInt(2);
      s.items_committed = static_cast<std::uint64_t>(select->ColumnInt(3));
      s.items_failed = static_cast<std::uint64_t>(select->ColumnInt(4));
      s.counters_json = select->ColumnText(5);
    }
    return samples;
  };
  auto samples = list();
  if (!samples.ok()) return samples.status().WithContext("store: list samples");
  return samples;
}

}  // namespace sluice::sqlite
