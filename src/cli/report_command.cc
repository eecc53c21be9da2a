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
#include "src/cli/run_series.h"
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

constexpr std::size_t kTopHosts = 15;

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
                         const RunSeries& series,
                         const std::map<std::string, StageTimes>& stages,
                         const ResultStats& results) {
  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>sluice report: {}</title><style>{}</style></head><body>\n"
      "<h1>sluice report</h1>\n",
      HtmlEscape(where), kStyle);
  const std::uint64_t done = summary.results();
  const double span_s = static_cast<double>(series.last_ms - series.first_ms) / 1000;
  html += "<table id=\"summary\">\n";
  html += Row({"store", where});
  html += Row({"stage groups", fmt::format("{}", fmt::join(groups, ", "))});
  html += Row({"items", fmt::format("{} ({} done, {:.1f}%)", summary.items, done,
                                    summary.items > 0 ? 100.0 * done / summary.items : 0)});
  html += Row({"results", fmt::format("{} ok, {} failed ({:.2f}% failed){}", summary.results_ok,
                                      summary.results_failed,
                                      done > 0 ? 100.0 * summary.results_failed / done : 0,
                                      summary.results_filtered > 0
                                          ? fmt::format(", {} filtered", summary.results_filtered)
                                          : std::string())});
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
                      {{"workers", PerSecond(series.worker_seconds, axis)}});
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
                   t.records > 0 ? ShortSeconds(t.seconds / static_cast<double>(t.records)) : "-",
                   ShortSeconds(t.Quantile(0.5)), ShortSeconds(t.Quantile(0.9)),
                   ShortSeconds(t.Quantile(0.99))});
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
                   ShortSeconds(h.download_ms / static_cast<double>(h.timed) / 1000)});
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
  const RunSeries series = BuildRunSeries(*samples, reported);
  const std::string html = RenderReport(where, *groups, reported, *summary, series,
                                        StageTimesOf(*reports), *results);
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
