// A run over time, from the store's time series (WorkerSample) and the workers'
// latest reports: what `sluice report` plots. Amounts are spread evenly over the time
// between two samples of a worker, then summed per step of a common time axis, so
// that samples every 15 s draw a steady rate at any step, and runs that never
// overlapped (restarts) each show where they ran.
#ifndef SLUICE_CLI_RUN_SERIES_H_
#define SLUICE_CLI_RUN_SERIES_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "sluice/store.h"

namespace sluice::cli {

// At most this many steps on a time axis.
inline constexpr double kMaxSteps = 150;

// The time axis: [start, start + steps * step), the last step cut at end_ms.
struct TimeAxis {
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;
  double step_ms = 1000;
  std::size_t steps = 0;

  std::vector<double> Zeros() const { return std::vector<double>(steps, 0.0); }
  // The seconds step `i` covers: step_ms, less for the last (at least 1 ms).
  double CoveredSeconds(std::size_t i) const;
  // Adds `amount`, which happened evenly over [from, to], to the steps it overlaps
  // (all of it to one step when from == to).
  void Spread(std::vector<double>& steps_of, std::int64_t from, std::int64_t to,
              double amount) const;
  std::size_t Index(double offset_ms) const;
};

// 1, 2 or 5 times a power of ten seconds, at least 1 s, giving at most kMaxSteps
// steps over `span_ms`.
double StepMs(std::int64_t span_ms);

// What the time series adds up to, as amounts per step.
struct RunSeries {
  TimeAxis axis;
  std::map<std::string, std::vector<double>> committed;  // items, by group
  std::vector<double> failed;                            // items, in the reported group
  std::map<std::string, std::vector<double>> failures;   // by reason, reported group
  std::map<std::string, std::vector<double>> stages;     // records, by stage
  std::vector<double> bytes;                             // fetched
  std::vector<double> worker_seconds;                    // workers alive x seconds
  std::set<std::string> owners;                          // worker runs
  std::int64_t first_ms = 0;
  std::int64_t last_ms = 0;
};

// `samples` as the store lists them (by time). Failures are counted in the
// `reported` group only (later groups carry the earlier ones' failures).
RunSeries BuildRunSeries(const std::vector<WorkerSample>& samples,
                         const std::string& reported);

// Amounts per step as amounts per second of the time each step covers.
std::vector<double> PerSecond(std::vector<double> values, const TimeAxis& axis);

// Time per record of one stage, from its histogram's buckets.
struct StageTimes {
  std::string group;
  std::uint64_t index = 0;                  // its place in its group
  std::map<double, std::uint64_t> buckets;  // upper bound (s, +inf last) -> records
  std::uint64_t records = 0;
  double seconds = 0;  // summed over the records

  // The p-quantile, interpolated within its bucket; the last finite bound when it
  // falls in the bucket over it. 0 without records.
  double Quantile(double p) const;
};

// Each stage's times, summed over the workers' latest reports.
std::map<std::string, StageTimes> StageTimesOf(const std::vector<WorkerReport>& reports);

}  // namespace sluice::cli

#endif  // SLUICE_CLI_RUN_SERIES_H_
