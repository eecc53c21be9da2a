#include "src/cli/run_series.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "src/cli/counter_keys.h"

namespace sluice::cli {

double TimeAxis::CoveredSeconds(std::size_t i) const {
  const double left =
      static_cast<double>(end_ms - start_ms) - static_cast<double>(i) * step_ms;
  return std::clamp(left, 1.0, step_ms) / 1000;
}

void TimeAxis::Spread(std::vector<double>& steps_of, std::int64_t from, std::int64_t to,
                      double amount) const {
  if (steps == 0 || amount == 0) return;
  const double a = static_cast<double>(from - start_ms);
  const double b = static_cast<double>(to - start_ms);
  if (b <= a) {
    steps_of[Index(b)] += amount;
    return;
  }
  for (std::size_t i = Index(a); i <= Index(b); ++i) {
    const double lo = std::max(a, static_cast<double>(i) * step_ms);
    const double hi = std::min(b, static_cast<double>(i + 1) * step_ms);
    if (hi > lo) steps_of[i] += amount * (hi - lo) / (b - a);
  }
}

std::size_t TimeAxis::Index(double offset_ms) const {
  const auto i = static_cast<std::size_t>(std::max(0.0, offset_ms / step_ms));
  return std::min(i, steps - 1);
}

double StepMs(std::int64_t span_ms) {
  const double wanted = std::max(1000.0, static_cast<double>(span_ms) / kMaxSteps);
  double step = 1000;
  for (double power = 1000; step < wanted; power *= 10) {
    for (double factor : {1.0, 2.0, 5.0, 10.0}) {
      step = factor * power;
      if (step >= wanted) break;
    }
  }
  return step;
}

RunSeries BuildRunSeries(const std::vector<WorkerSample>& samples,
                         const std::string& reported) {
  RunSeries out;
  if (samples.empty()) return out;
  out.first_ms = samples.front().at_ms;
  out.last_ms = samples.back().at_ms;
  TimeAxis& axis = out.axis;
  axis.start_ms = out.first_ms;
  axis.end_ms = out.last_ms;
  axis.step_ms = StepMs(out.last_ms - out.first_ms);
  axis.steps = std::max<std::size_t>(
      1, static_cast<std::size_t>(
             std::ceil(static_cast<double>(out.last_ms - out.first_ms) / axis.step_ms)));
  out.failed = axis.Zeros();
  out.bytes = axis.Zeros();
  out.worker_seconds = axis.Zeros();
  // Each worker's samples in time order (the store lists them so).
  std::map<std::pair<std::string, std::string>, std::vector<const WorkerSample*>> runs;
  for (const WorkerSample& s : samples) {
    runs[{s.owner, s.group}].push_back(&s);
    out.owners.insert(s.owner);
  }
  auto series_of = [&](std::map<std::string, std::vector<double>>& map,
                       const std::string& key) -> std::vector<double>& {
    auto [it, added] = map.try_emplace(key);
    if (added) it->second = axis.Zeros();
    return it->second;
  };
  for (const auto& [key, run] : runs) {
    const std::string& group = key.second;
    std::vector<double>& committed = series_of(out.committed, group);
    // A worker counts from its first sample to its last: its seconds in each step,
    // which PerSecond() turns into the workers alive on average.
    axis.Spread(out.worker_seconds, run.front()->at_ms, run.back()->at_ms,
                static_cast<double>(run.back()->at_ms - run.front()->at_ms) / 1000);
    // Counts start at zero when the worker starts: what its first sample holds
    // already (work done before its first report) goes in that sample's step.
    std::map<std::string, std::uint64_t> before;
    WorkerSample start = *run.front();
    start.items_committed = 0;
    start.items_failed = 0;
    for (std::size_t i = 0; i < run.size(); ++i) {
      const WorkerSample& a = i == 0 ? start : *run[i - 1];
      const WorkerSample& b = *run[i];
      auto delta = [](std::uint64_t from, std::uint64_t to) {
        return to >= from ? static_cast<double>(to - from) : 0.0;
      };
      axis.Spread(committed, a.at_ms, b.at_ms, delta(a.items_committed, b.items_committed));
      std::map<std::string, std::uint64_t> now = ParseCounters(b.counters_json);
      for (const auto& [name, value] : now) {
        const double change = delta(before.contains(name) ? before[name] : 0, value);
        if (change == 0) continue;
        const CounterKey parsed = ParseCounterKey(name);
        if (parsed.name == "stage_records_total") {
          axis.Spread(series_of(out.stages, parsed.Label("stage")), a.at_ms, b.at_ms, change);
        } else if (parsed.name == "fetch_bytes_total") {
          axis.Spread(out.bytes, a.at_ms, b.at_ms, change);
        } else if (parsed.name == "failures" && group == reported) {
          axis.Spread(series_of(out.failures, parsed.Label("reason")), a.at_ms, b.at_ms,
                      change);
        }
      }
      if (group == reported) {
        axis.Spread(out.failed, a.at_ms, b.at_ms, delta(a.items_failed, b.items_failed));
      }
      before = std::move(now);
    }
  }
  return out;
}

std::vector<double> PerSecond(std::vector<double> values, const TimeAxis& axis) {
  for (std::size_t i = 0; i < values.size(); ++i) values[i] /= axis.CoveredSeconds(i);
  return values;
}

double StageTimes::Quantile(double p) const {
  std::uint64_t total = 0;
  for (const auto& [bound, count] : buckets) total += count;
  if (total == 0) return 0;
  const double wanted = p * static_cast<double>(total);
  double below = 0;
  double lower = 0;
  for (const auto& [bound, count] : buckets) {
    if (below + static_cast<double>(count) >= wanted) {
      if (!std::isfinite(bound)) return lower;
      return lower + (bound - lower) * (wanted - below) / static_cast<double>(count);
    }
    below += static_cast<double>(count);
    if (std::isfinite(bound)) lower = bound;
  }
  return lower;
}

std::map<std::string, StageTimes> StageTimesOf(const std::vector<WorkerReport>& reports) {
  std::map<std::string, StageTimes> stages;
  for (const WorkerReport& report : reports) {
    for (const auto& [key, value] : ParseCounters(report.counters_json)) {
      const CounterKey parsed = ParseCounterKey(key);
      const std::string stage = parsed.Label("stage");
      if (stage.empty()) continue;
      StageTimes& s = stages[stage];
      s.group = report.group;
      if (parsed.name == "stage_seconds_bucket") {
        s.buckets[std::strtod(parsed.Label("le").c_str(), nullptr)] += value;
      } else if (parsed.name == "stage_records_total") {
        s.records += value;
      } else if (parsed.name == "stage_us_total") {
        s.seconds += static_cast<double>(value) / 1e6;
      } else if (parsed.name == "stage_index") {
        s.index = value;
      }
    }
  }
  return stages;
}


}  // namespace sluice::cli
