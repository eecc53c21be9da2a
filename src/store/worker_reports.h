// The workers table: each worker's latest report of itself (Store::ReportWorker),
// the same in both backends. A row per (owner, group), replaced every few seconds;
// the report before is kept in previous_items / previous_ms for the rate. The
// worker_samples table: the time series (WorkerSample), a row per (owner, group)
// every kWorkerSampleEveryMs. Both added to
// stores of schema version 1 when missing (CREATE TABLE IF NOT EXISTS): older sluice
// versions never read it.
#ifndef SLUICE_STORE_WORKER_REPORTS_H_
#define SLUICE_STORE_WORKER_REPORTS_H_

#include <cstdint>

namespace sluice {

inline constexpr const char* kWorkersTableSql = R"sql(
CREATE TABLE IF NOT EXISTS workers (
  owner           TEXT NOT NULL,
  group_name      TEXT NOT NULL,
  host            TEXT NOT NULL,
  started_ms      BIGINT NOT NULL,
  updated_ms      BIGINT NOT NULL,
  last_renewal_ms BIGINT NOT NULL,
  batches_held    BIGINT NOT NULL,
  items_committed BIGINT NOT NULL,
  items_failed    BIGINT NOT NULL,
  stopped         INTEGER NOT NULL,
  counters_json   TEXT,
  previous_items  BIGINT NOT NULL,
  previous_ms     BIGINT NOT NULL,
  PRIMARY KEY (owner, group_name)
);
CREATE TABLE IF NOT EXISTS worker_samples (
  owner           TEXT NOT NULL,
  group_name      TEXT NOT NULL,
  at_ms           BIGINT NOT NULL,
  items_committed BIGINT NOT NULL,
  items_failed    BIGINT NOT NULL,
  counters_json   TEXT,
  PRIMARY KEY (owner, group_name, at_ms)
);
CREATE INDEX IF NOT EXISTS worker_samples_by_time ON worker_samples (at_ms);
)sql";

// Reports older than this are dropped when another is written.
inline constexpr std::int64_t kWorkerReportKeepMs = 7LL * 24 * 3600 * 1000;

}  // namespace sluice

#endif  // SLUICE_STORE_WORKER_REPORTS_H_
