// `sluice report (--workdir DIR | --store URL) -o report.html [--group G]`: one
// self-contained HTML page (inline SVG, no external asset, no network) about a run,
// while it goes on or after it:
//   - throughput over time per stage group, across restarts, from the store's time
//     series (WorkerSample: each worker's counts every 15 s), with the workers alive;
//   - records per second through each stage, failures by reason over time, bytes/s;
//   - time per record per stage (mean, p50, p90, p99) from the workers' histograms;
//   - the most failing and the slowest hosts, and the sizes of what was downloaded,
//     from one pass over the results (Store::ExportRows, streamed: memory grows with
//     the number of hosts, not of items).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "src/cli/command.h"
#include "src/cli/counter_keys.h"
#include "src/cli/pipeline_setup.h"
#include "src/cli/svg_chart.h"
#include "src/cli/workdir.h"

namespace sluice::cli {
namespace {

struct ReportFlags {
  std::string workdir;
  std::string store;
  std::string output;
  std::string group;  // "": the pipeline's last stage group
};

// At most this many steps on a time chart.
constexpr double kMaxSteps = 150;
constexpr std::size_t kTopHosts = 15;

// The time axis: [start, start + steps * step).
struct TimeAxis {
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;  // the last sample: the last step may end before its time
  double step_ms = 1000;
  std::size_t steps = 0;

  // The seconds step `i` covers: step_ms, less for the last.
  double CoveredSeconds(std::size_t i) const {
    const double left = static_cast<double>(end_ms - start_ms) - static_cast<double>(i) * step_ms;
    return std::clamp(left, 1.0, step_ms) / 1000;
  }

  std::vector<double> Zeros() const { return std::vector<double>(steps, 0.0); }

  // Adds `amount`, which happened evenly over [from, to], to the steps it overlaps.
  void Spread(std::vector<double>& steps_of, std::int64_t from, std::int64_t to,
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
  std::size_t Index(double offset_ms) const {
    const auto i = static_cast<std::size_t>(std::max(0.0, offset_ms / step_ms));
    return std::min(i, steps - 1);
  }
};

// 1, 2 or 5 times a power of ten seconds, at least 1 s, giving at most kMaxSteps.
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

// What the time series adds up to, as amounts per step.
struct Series {
  TimeAxis axis;
  std::map<std::string, std::vector<double>> committed;  // by group
  std::vector<double> failed;                            // in the reported group
  std::map<std::string, std::vector<double>> failures;   // by reason, reported group
  std::map<std::string, std::vector<double>> stages;     // records by stage
  std::vector<double> bytes;
  std::vector<double> workers;  // alive per step (mean over the step)
  std::set<std::string> owners;
  std::int64_t first_ms = 0;
  std::int64_t last_ms = 0;
};

Series BuildSeries(const std::vector<WorkerSample>& samples, const std::string& reported) {
  Series out;
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
  out.workers = axis.Zeros();
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
    axis.Spread(out.workers, run.front()->at_ms, run.back()->at_ms,
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

// Amounts per step as amounts per second of the time each step covers.
std::vector<double> PerSecond(std::vector<double> values, const TimeAxis& axis) {
  for (std::size_t i = 0; i < values.size(); ++i) values[i] /= axis.CoveredSeconds(i);
  return values;
}

// Time per record of one stage, from its histogram's buckets.
struct StageTimes {
  std::string group;
  std::uint64_t index = 0;
  std::map<double, std::uint64_t> buckets;  // upper bound (s) -> records
  std::uint64_t records = 0;
  double seconds = 0;

  // The p-quantile, interpolated within its bucket; the last finite bound for the
  // bucket over it.
  double Quantile(double p) const {
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
};

std::map<std::string, StageTimes> StagesOf(const std::vector<WorkerReport>& reports) {
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

// One pass over the reported group's results.
struct HostStats {
  std::uint64_t items = 0;
  std::uint64_t failed = 0;
  std::map<std::string, std::uint64_t> reasons;
  std::uint64_t timed = 0;  // items with a download_ms
  double download_ms = 0;   // summed
};

struct ResultStats {
  std::unordered_map<std::string, HostStats> hosts;
  std::vector<std::uint64_t> bytes;  // by kByteBounds
  std::vector<std::uint64_t> sides;  // by kSideBounds: the longer side of the source
  std::uint64_t with_result = 0;
};

constexpr double kByteBounds[] = {1e3, 4e3, 16e3, 64e3, 256e3, 1e6, 4e6, 16e6};
constexpr const char* kByteLabels[] = {"< 1 kB",      "1-4 kB",      "4-16 kB",
                                       "16-64 kB",    "64-256 kB",   "256 kB-1 MB",
                                       "1-4 MB",      "4-16 MB",     ">= 16 MB"};
constexpr double kSideBounds[] = {64, 128, 256, 512, 1024, 2048, 4096};
constexpr const char* kSideLabels[] = {"< 64 px",      "64-127 px",    "128-255 px",
                                       "256-511 px",   "512-1023 px",  "1024-2047 px",
                                       "2048-4095 px", ">= 4096 px"};

template <std::size_t N>
std::size_t BucketOf(const double (&bounds)[N], double value) {
  std::size_t i = 0;
  while (i < N && value >= bounds[i]) ++i;
  return i;
}

// "http://user@Host:8080/a?b" -> "host:8080".
std::string HostOf(std::string_view url) {
  const std::size_t scheme = url.find("://");
  if (scheme != std::string_view::npos) url.remove_prefix(scheme + 3);
  url = url.substr(0, url.find_first_of("/?#"));
  if (const std::size_t at = url.rfind('@'); at != std::string_view::npos) {
    url.remove_prefix(at + 1);
  }
  std::string host(url);
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return host.empty() ? "(none)" : host;
}

double NumberField(const nlohmann::json& fields, const char* name) {
  auto it = fields.find(name);
  return it != fields.end() && it->is_number() ? it->get<double>() : -1;
}

Result<ResultStats> ScanResults(Store& store, const std::string& group) {
  ResultStats stats;
  stats.bytes.assign(std::size(kByteLabels), 0);
  stats.sides.assign(std::size(kSideLabels), 0);
  Status scanned = store.ExportRows(group, [&](const ExportRow& row) -> Status {
    if (!row.has_result) return Status::Ok();
    ++stats.with_result;
    HostStats& host = stats.hosts[HostOf(row.url)];
    ++host.items;
    if (row.reason != FailureReason::kNone) {
      ++host.failed;
      ++host.reasons[std::string(FailureReasonName(row.reason))];
    }
    if (row.fields_json.empty()) return Status::Ok();
    const nlohmann::json fields = nlohmann::json::parse(row.fields_json, nullptr, false);
    if (!fields.is_object()) return Status::Ok();
    if (const double ms = NumberField(fields, "download_ms"); ms >= 0) {
      ++host.timed;
      host.download_ms += ms;
    }
    if (const double bytes = NumberField(fields, "bytes"); bytes >= 0) {
      ++stats.bytes[BucketOf(kByteBounds, bytes)];
    }
    double width = NumberField(fields, "original_width");
    double height = NumberField(fields, "original_height");
    if (width < 0 || height < 0) {
      width = NumberField(fields, "width");
      height = NumberField(fields, "height");
    }
    if (width > 0 && height > 0) ++stats.sides[BucketOf(kSideBounds, std::max(width, height))];
    return Status::Ok();
  });
  if (!scanned.ok()) return scanned;
  return stats;
}

std::string UtcTime(std::int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

std::string Duration(double seconds) {
  const auto s = static_cast<std::int64_t>(std::llround(seconds));
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
}

std::string Seconds(double s) {
  if (s < 1) return fmt::format("{:.3g} ms", s * 1000);
  return fmt::format("{:.3g} s", s);
}

constexpr const char* kStyle = R"css(
body { font: 14px/1.4 sans-serif; margin: 24px; color: #222; max-width: 960px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; }
td, th { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: right; }
td:first-child, th:first-child { text-align: left; }
svg.chart { display: block; margin: 8px 0; background: #fafafa; }
svg .title { font-size: 13px; font-weight: bold; }
svg .axis, svg .legend { font-size: 11px; fill: #444; }
svg .grid { stroke: #ddd; }
.note { color: #666; font-size: 12px; }
)css";

// Marks the page once the browser has laid out its charts (for tests and for
// anyone checking that the file renders): data-charts-drawn counts charts with a
// size.
constexpr const char* kDrawnScript = R"js(
window.addEventListener('load', function () {
  var drawn = 0;
  document.querySelectorAll('svg.chart').forEach(function (svg) {
    var box = svg.getBoundingClientRect();
    if (box.width > 0 && box.height > 0) drawn++;
  });
  document.body.setAttribute('data-charts-drawn', String(drawn));
});
)js";

std::string Row(const std::vector<std::string>& cells, bool header = false) {
  std::string row = "<tr>";
  for (const std::string& cell : cells) {
    const char* tag = header ? "th" : "td";
    row += fmt::format("<{}>{}</{}>", tag, HtmlEscape(cell), tag);
  }
  return row + "</tr>\n";
}

std::string RenderReport(const std::string& where, const std::vector<std::string>& groups,
                         const std::string& reported, const StoreSummary& summary,
                         const Series& series, const std::map<std::string, StageTimes>& stages,
                         const ResultStats& results) {
  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>sluice report: {}</title><style>{}</style></head><body>\n"
      "<h1>sluice report</h1>\n",
      HtmlEscape(where), kStyle);
  const std::uint64_t done = summary.results_ok + summary.results_failed;
  const double span_s = static_cast<double>(series.last_ms - series.first_ms) / 1000;
  html += "<table id=\"summary\">\n";
  html += Row({"store", where});
  html += Row({"stage groups", fmt::format("{}", fmt::join(groups, ", "))});
  html += Row({"items", fmt::format("{} ({} done, {:.1f}%)", summary.items, done,
                                    summary.items > 0 ? 100.0 * done / summary.items : 0)});
  html += Row({"results", fmt::format("{} ok, {} failed ({:.2f}% failed)", summary.results_ok,
                                      summary.results_failed,
                                      done > 0 ? 100.0 * summary.results_failed / done : 0)});
  html += Row({"rejected input lines", fmt::format("{}", summary.rejected_lines)});
  if (series.first_ms > 0) {
    html += Row({"time series", fmt::format("{} to {} ({}), {} worker runs",
                                            UtcTime(series.first_ms), UtcTime(series.last_ms),
                                            Duration(span_s), series.owners.size())});
    double committed = 0;
    auto it = series.committed.find(reported);
    if (it != series.committed.end()) {
      for (double v : it->second) committed += v;
    }
    if (span_s > 0) {
      html += Row({"mean rate", fmt::format("{:.1f} items/s over the time series",
                                            committed / span_s)});
    }
  }
  html += "</table>\n";

  const TimeAxis& axis = series.axis;
  const double step_s = axis.step_ms / 1000;
  html += "<h2>Throughput</h2>\n";
  {
    std::vector<ChartSeries> lines;
    for (const std::string& group : groups) {
      auto it = series.committed.find(group);
      if (it == series.committed.end()) continue;
      lines.push_back({fmt::format("committed: {}", group), PerSecond(it->second, axis)});
    }
    if (!series.failed.empty()) {
      lines.push_back({"failed", PerSecond(series.failed, axis)});
    }
    html += TimeChart("throughput", "Items committed", "items/s", step_s, lines);
    html += TimeChart("workers", "Workers reporting", "workers", step_s,
                      {{"workers", PerSecond(series.workers, axis)}});
  }
  {
    std::vector<std::pair<std::uint64_t, std::string>> order;
    for (const auto& [name, times] : stages) order.emplace_back(times.index, name);
    std::sort(order.begin(), order.end());
    std::vector<ChartSeries> lines;
    for (const auto& [index, name] : order) {
      auto it = series.stages.find(name);
      if (it != series.stages.end()) lines.push_back({name, PerSecond(it->second, axis)});
    }
    html += TimeChart("stages", "Records through each stage", "records/s", step_s, lines);

    html += "<h2>Time per record</h2>\n<table id=\"latency\">\n";
    html += Row({"stage", "group", "records", "mean", "p50", "p90", "p99"}, true);
    std::vector<ChartBar> p99;
    for (const auto& [index, name] : order) {
      const StageTimes& t = stages.at(name);
      html += Row({name, t.group, fmt::format("{}", t.records),
                   t.records > 0 ? Seconds(t.seconds / static_cast<double>(t.records)) : "-",
                   Seconds(t.Quantile(0.5)), Seconds(t.Quantile(0.9)),
                   Seconds(t.Quantile(0.99))});
      p99.push_back({name, t.Quantile(0.99) * 1000});
    }
    html += "</table>\n<p class=\"note\">Async stages (fetch) count from a record's start to "
            "its end, waits included; CPU stages their time on a core. Quantiles are "
            "interpolated within histogram buckets.</p>\n";
    html += BarChart("latency-p99", "p99 time per record", "ms", p99);
  }

  html += "<h2>Failures</h2>\n";
  {
    std::vector<ChartSeries> lines;
    for (const auto& [reason, values] : series.failures) {
      lines.push_back({reason, PerSecond(values, axis)});
    }
    html += TimeChart("failures", "Failures by reason", "items/s", step_s, lines);
    std::vector<ChartBar> bars;
    for (const auto& [reason, count] : summary.failures) {
      bars.push_back({reason, static_cast<double>(count)});
    }
    std::sort(bars.begin(), bars.end(),
              [](const ChartBar& a, const ChartBar& b) { return a.value > b.value; });
    html += BarChart("failure-reasons", "Failed items by reason", "items", bars);
  }

  html += "<h2>Hosts</h2>\n";
  {
    std::vector<std::pair<const std::string*, const HostStats*>> hosts;
    hosts.reserve(results.hosts.size());
    for (const auto& [name, stats] : results.hosts) hosts.emplace_back(&name, &stats);
    auto top_reason = [](const HostStats& h) {
      std::string best;
      std::uint64_t most = 0;
      for (const auto& [reason, count] : h.reasons) {
        if (count > most) best = reason, most = count;
      }
      return best;
    };
    std::sort(hosts.begin(), hosts.end(), [](const auto& a, const auto& b) {
      return a.second->failed != b.second->failed ? a.second->failed > b.second->failed
                                                  : *a.first < *b.first;
    });
    html += fmt::format("<p>{} hosts in {} results.</p>\n", hosts.size(),
                        results.with_result);
    html += "<table id=\"failing-hosts\"><caption>Most failing hosts</caption>\n";
    html += Row({"host", "items", "failed", "failed %", "most common reason"}, true);
    for (std::size_t i = 0; i < hosts.size() && i < kTopHosts; ++i) {
      const HostStats& h = *hosts[i].second;
      if (h.failed == 0) break;
      html += Row({*hosts[i].first, fmt::format("{}", h.items), fmt::format("{}", h.failed),
                   fmt::format("{:.1f}", 100.0 * h.failed / h.items), top_reason(h)});
    }
    html += "</table>\n";
    std::sort(hosts.begin(), hosts.end(), [](const auto& a, const auto& b) {
      auto mean = [](const HostStats& h) {
        return h.timed > 0 ? h.download_ms / static_cast<double>(h.timed) : -1.0;
      };
      return mean(*a.second) != mean(*b.second) ? mean(*a.second) > mean(*b.second)
                                                : *a.first < *b.first;
    });
    html += "<table id=\"slow-hosts\"><caption>Slowest hosts (mean download time, "
            "failed downloads included)</caption>\n";
    html += Row({"host", "items", "timed", "mean download"}, true);
    for (std::size_t i = 0; i < hosts.size() && i < kTopHosts; ++i) {
      const HostStats& h = *hosts[i].second;
      if (h.timed == 0) break;
      html += Row({*hosts[i].first, fmt::format("{}", h.items), fmt::format("{}", h.timed),
                   Seconds(h.download_ms / static_cast<double>(h.timed) / 1000)});
    }
    html += "</table>\n";
  }

  html += "<h2>Bytes and image sizes</h2>\n";
  html += TimeChart("bytes", "Bytes downloaded", "MB/s", step_s,
                    {{"fetched", [&] {
                        std::vector<double> mb = PerSecond(series.bytes, axis);
                        for (double& v : mb) v /= 1e6;
                        return mb;
                      }()}});
  {
    std::vector<ChartBar> bytes;
    for (std::size_t i = 0; i < results.bytes.size(); ++i) {
      bytes.push_back({kByteLabels[i], static_cast<double>(results.bytes[i])});
    }
    html += BarChart("download-sizes", "Downloads by size", "items", bytes);
    std::vector<ChartBar> sides;
    for (std::size_t i = 0; i < results.sides.size(); ++i) {
      sides.push_back({kSideLabels[i], static_cast<double>(results.sides[i])});
    }
    html += BarChart("image-sizes", "Images by longer side of the source", "items", sides);
  }
  html += fmt::format(
      "<p class=\"note\">Time series: a sample per worker every {} s; rates are spread "
      "evenly between samples.</p>\n<script>{}</script>\n</body></html>\n",
      kWorkerSampleEveryMs / 1000, kDrawnScript);
  return html;
}

Status WriteAtomically(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp";
  std::FILE* file = std::fopen(temp.c_str(), "wb");
  if (file == nullptr) {
    return IoError(fmt::format("--output {}: cannot create {}: {}", path, temp,
                               std::strerror(errno)));
  }
  bool failed = std::fwrite(text.data(), 1, text.size(), file) != text.size();
  failed = std::fclose(file) != 0 || failed;
  if (failed) {
    std::remove(temp.c_str());
    return IoError(fmt::format("--output {}: write failed", path));
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) {
    std::remove(temp.c_str());
    return IoError(fmt::format("--output {}: {}", path, error.message()));
  }
  return Status::Ok();
}

int Report(const ReportFlags& flags) {
  int exit_code = kExitOk;
  std::unique_ptr<Store> store = OpenStoreOfFlags(flags.workdir, flags.store, &exit_code);
  if (store == nullptr) return exit_code;
  Result<std::vector<std::string>> groups = StoredGroups(*store);
  if (!groups.ok()) {
    PrintError(groups.status());
    return kExitFailure;
  }
  std::string reported = flags.group.empty() ? groups->back() : flags.group;
  if (std::find(groups->begin(), groups->end(), reported) == groups->end()) {
    PrintError(InvalidArgument(fmt::format("--group {}: no such stage group ({})", reported,
                                           fmt::join(*groups, ", "))));
    return kExitUsage;
  }
  Result<StoreSummary> summary = store->Summarize(reported);
  Result<std::vector<WorkerSample>> samples =
      summary.ok() ? store->ListSamples("") : summary.status();
  Result<std::vector<WorkerReport>> reports =
      samples.ok() ? store->ListWorkers() : samples.status();
  Result<ResultStats> results =
      reports.ok() ? ScanResults(*store, reported) : reports.status();
  if (!results.ok()) {
    PrintError(results.status());
    return kExitFailure;
  }
  Result<StoreAddress> address = ResolveStoreAddress(flags.workdir, flags.store);
  const std::string where = address.ok() ? DescribeStore(*address) : flags.workdir;
  const Series series = BuildSeries(*samples, reported);
  const std::string html = RenderReport(where, *groups, reported, *summary, series,
                                        StagesOf(*reports), *results);
  if (Status written = WriteAtomically(flags.output, html); !written.ok()) {
    PrintError(written);
    return kExitFailure;
  }
  fmt::print("wrote {} ({} samples from {} worker runs, {} results, {} hosts)\n",
             flags.output, samples->size(), series.owners.size(), results->with_result,
             results->hosts.size());
  return kExitOk;
}

}  // namespace

Command ReportCommandRow() {
  return Command{
      "report", "Write a self-contained HTML report of a run: throughput, times, failures",
      [](std::vector<Flag>& flags) -> CommandRun {
        auto f = std::make_shared<ReportFlags>();
        flags.push_back(WorkdirFlag(&f->workdir, "The run's directory (unless --store)",
                                    /*required=*/false));
        flags.push_back(StoreFlag(&f->store));
        flags.push_back({.names = "--output,-o",
                         .help = "The HTML file to write (atomically)",
                         .target = &f->output,
                         .required = true});
        flags.push_back(GroupFlag(
            &f->group, "Stage group whose results to report (default: the last one)"));
        return [f] { return Report(*f); };
      }};
}

}  // namespace sluice::cli
