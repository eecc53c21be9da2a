// The PostgreSQL store's worker reports (src/store/worker_reports.h).
#include <fmt/format.h>

#include "src/store/postgres_store_internal.h"
#include "src/store/worker_reports.h"

namespace sluice::postgres {

Status PostgresStore::ReportWorker(const WorkerReport& report) {
  std::lock_guard lock(mutex_);
  auto write = [&]() -> Status {
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    SLUICE_ASSIGN_OR_RETURN(pg::PgResult now_row,
                            conn->Exec("SELECT " + NowSql(1), {NowParam()}));
    const std::int64_t now = now_row.Int(0, 0);
    auto count = [](std::uint64_t value) {
      return pg::IntParam(static_cast<std::int64_t>(value));
    };
    SLUICE_RETURN_IF_ERROR(
        conn->Exec(
                "INSERT INTO workers (owner, group_name, host, started_ms, updated_ms, "
                "  last_renewal_ms, batches_held, items_committed, items_failed, "
                "  stopped, counters_json, previous_items, previous_ms) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $8, $5) "
                "ON CONFLICT (owner, group_name) DO UPDATE SET "
                "  previous_items = workers.items_committed, "
                "  previous_ms = workers.updated_ms, host = excluded.host, "
                "  started_ms = excluded.started_ms, updated_ms = excluded.updated_ms, "
                "  last_renewal_ms = excluded.last_renewal_ms, "
                "  batches_held = excluded.batches_held, "
                "  items_committed = excluded.items_committed, "
                "  items_failed = excluded.items_failed, stopped = excluded.stopped, "
                "  counters_json = excluded.counters_json",
                {pg::StorableText(report.owner), pg::StorableText(report.group),
                 pg::StorableText(report.host), pg::IntParam(report.started_ms),
                 pg::IntParam(now), pg::IntParam(report.last_renewal_ms),
                 count(report.batches_held), count(report.items_committed),
                 count(report.items_failed), pg::IntParam(report.stopped ? 1 : 0),
                 pg::TextOrNull(report.counters_json)})
            .ToStatus());
    // A sample when none is this recent (the first report's too), and the last.
    SLUICE_RETURN_IF_ERROR(
        conn->Exec("INSERT INTO worker_samples (owner, group_name, at_ms, "
                   "  items_committed, items_failed, counters_json) "
                   "SELECT $1::text, $2::text, $3::bigint, $4::bigint, $5::bigint, $6::text "
                   "WHERE $7::boolean OR NOT EXISTS ("
                   "  SELECT 1 FROM worker_samples WHERE owner = $1::text "
                   "  AND group_name = $2::text AND at_ms > $3::bigint - $8::bigint) "
                   "ON CONFLICT (owner, group_name, at_ms) DO UPDATE SET "
                   "  items_committed = excluded.items_committed, "
                   "  items_failed = excluded.items_failed, "
                   "  counters_json = excluded.counters_json",
                   {pg::StorableText(report.owner), pg::StorableText(report.group),
                    pg::IntParam(now), count(report.items_committed),
                    count(report.items_failed), pg::TextOrNull(report.sample_json),
                    report.stopped ? "true" : "false", pg::IntParam(kWorkerSampleEveryMs)})
            .ToStatus());
    SLUICE_RETURN_IF_ERROR(conn->Exec("DELETE FROM worker_samples WHERE at_ms < $1",
                                      {pg::IntParam(now - kWorkerSampleKeepMs)})
                               .ToStatus());
    return conn
        ->Exec("DELETE FROM workers WHERE updated_ms < $1",
               {pg::IntParam(now - kWorkerReportKeepMs)})
        .ToStatus();
  };
  return write().WithContext(fmt::format("store: report of worker {}", report.owner));
}

Result<std::vector<WorkerReport>> PostgresStore::ListWorkers() {
  std::lock_guard lock(mutex_);
  auto list = [&]() -> Result<std::vector<WorkerReport>> {
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    SLUICE_ASSIGN_OR_RETURN(
        pg::PgResult rows,
        conn->Exec("SELECT owner, group_name, host, started_ms, updated_ms, "
                   "  last_renewal_ms, batches_held, items_committed, items_failed, "
                   "  stopped, counters_json, previous_items, previous_ms "
                   "FROM workers ORDER BY group_name, owner"));
    std::vector<WorkerReport> reports;
    for (int row = 0; row < rows.rows(); ++row) {
      WorkerReport& r = reports.emplace_back();
      r.owner = rows.Text(row, 0);
      r.group = rows.Text(row, 1);
      r.host = rows.Text(row, 2);
      r.started_ms = rows.Int(row, 3);
      r.updated_ms = rows.Int(row, 4);
      r.last_renewal_ms = rows.Int(row, 5);
      r.batches_held = static_cast<std::uint64_t>(rows.Int(row, 6));
      r.items_committed = static_cast<std::uint64_t>(rows.Int(row, 7));
      r.items_failed = static_cast<std::uint64_t>(rows.Int(row, 8));
      r.stopped = rows.Int(row, 9) != 0;
      r.counters_json = rows.Text(row, 10);
      r.previous_items = static_cast<std::uint64_t>(rows.Int(row, 11));
      r.previous_ms = rows.Int(row, 12);
    }
    return reports;
  };
  auto reports = list();
  if (!reports.ok()) return reports.status().WithContext("store: list workers");
  return reports;
}

Result<std::vector<WorkerSample>> PostgresStore::ListSamples(std::string_view group) {
  std::lock_guard lock(mutex_);
  auto list = [&]() -> Result<std::vector<WorkerSample>> {
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    SLUICE_ASSIGN_OR_RETURN(
        pg::PgResult rows,
        conn->Exec("SELECT owner, group_name, at_ms, items_committed, items_failed, "
                   "  counters_json FROM worker_samples "
                   "WHERE $1::text = '' OR group_name = $1::text ORDER BY at_ms, owner, group_name",
                   {pg::StorableText(group)}));
    std::vector<WorkerSample> samples;
    for (int row = 0; row < rows.rows(); ++row) {
      WorkerSample& s = samples.emplace_back();
      s.owner = rows.Text(row, 0);
      s.group = rows.Text(row, 1);
      s.at_ms = rows.Int(row, 2);
      s.items_committed = static_cast<std::uint64_t>(rows.Int(row, 3));
      s.items_failed = static_cast<std::uint64_t>(rows.Int(row, 4));
      s.counters_json = rows.Text(row, 5);
    }
    return samples;
  };
  auto samples = list();
  if (!samples.ok()) return samples.status().WithContext("store: list samples");
  return samples;
}

}  // namespace sluice::postgres
