// `sluice status (--workdir DIR | --store URL) [--json]`: what the store holds.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "src/cli/command.h"
#include "src/cli/live_status.h"
#include "src/cli/pipeline_setup.h"
#include "src/cli/run_series.h"
#include "src/cli/svg_chart.h"
#include "src/cli/workdir.h"

namespace sluice::cli {
namespace {

struct StatusFlags {
  std::string workdir;
  std::string store;
  std::string group;  // "": every group of the pipeline
  bool json = false;
};

// A worker report counts as live while it is this recent (reports come every 5 s).
constexpr std::int64_t kLiveReportMs = 30'000;

// One group's picture: the store's counts and the workers reporting for it.
struct GroupStatus {
  std::string name;
  StoreSummary summary;
  std::vector<WorkerReport> workers;  // live ones
  std::uint64_t ended = 0;            // workers that reported their end, or went quiet
  double rate = 0;                    // items/s committed by the live workers
};

double RateOf(const WorkerReport& w) {
  if (w.updated_ms <= w.previous_ms || w.items_committed < w.previous_items) return 0;
  return (w.items_committed - w.previous_items) * 1000.0 / (w.updated_ms - w.previous_ms);
}

std::string Ago(std::int64_t now_ms, std::int64_t then_ms) {
  if (then_ms <= 0) return "never";
  return fmt::format("{:.0f} s ago",
                     std::max<std::int64_t>(0, now_ms - then_ms) / 1000.0);
}

// The run as a whole, from the store's time series and the workers' reports.
struct RunPicture {
  double span_seconds = 0;       // first sample to last
  std::size_t worker_runs = 0;   // workers that ever reported (restarts count anew)
  double run_rate = 0;           // items/s of the last group over the span
  double live_rate = 0;          // items/s of the last group's live workers
  double eta_seconds = -1;       // items left at the live rate (else the run's); -1: none
  double bytes_fetched = 0;
  std::vector<std::pair<std::string, StageTimes>> stages;  // in pipeline order
};

RunPicture PictureOf(const std::vector<WorkerSample>& samples,
                     const std::vector<WorkerReport>& reports,
                     const std::vector<GroupStatus>& groups) {
  RunPicture picture;
  const GroupStatus& last = groups.back();
  const RunSeries series = BuildRunSeries(samples, last.name);
  picture.worker_runs = series.owners.size();
  picture.span_seconds = static_cast<double>(series.last_ms - series.first_ms) / 1000;
  if (auto it = series.committed.find(last.name);
      it != series.committed.end() && picture.span_seconds > 0) {
    for (double v : it->second) picture.run_rate += v;
    picture.run_rate /= picture.span_seconds;
  }
  for (double v : series.bytes) picture.bytes_fetched += v;
  picture.live_rate = last.rate;
  const StoreSummary& s = last.summary;
  const std::uint64_t done = s.results();
  const double rate = picture.live_rate > 0 ? picture.live_rate : picture.run_rate;
  if (s.items > done && rate > 0) {
    picture.eta_seconds = static_cast<double>(s.items - done) / rate;
  } else if (s.items == done) {
    picture.eta_seconds = 0;
  }
  std::map<std::string, StageTimes> stages = StageTimesOf(reports);
  std::vector<std::pair<std::string, StageTimes>> order(stages.begin(), stages.end());
  auto group_index = [&](const std::string& group) {
    for (std::size_t i = 0; i < groups.size(); ++i) {
      if (groups[i].name == group) return i;
    }
    return groups.size();
  };
  std::stable_sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    return std::pair(group_index(a.second.group), a.second.index) <
           std::pair(group_index(b.second.group), b.second.index);
  });
  picture.stages = std::move(order);
  return picture;
}

// A duration for people: "42 s", "7 min", "3.2 h", "2.1 days".
std::string ForPeople(double seconds) {
  if (seconds < 120) return fmt::format("{:.0f} s", seconds);
  if (seconds < 7200) return fmt::format("{:.0f} min", seconds / 60);
  if (seconds < 2 * 86400) return fmt::format("{:.1f} h", seconds / 3600);
  return fmt::format("{:.1f} days", seconds / 86400);
}

int ShowStatus(const StatusFlags& flags) {
  Result<StoreAddress> address = ResolveStoreAddress(flags.workdir, flags.store);
  if (!address.ok()) {
    PrintError(address.status());
    return kExitUsage;
  }
  Result<std::unique_ptr<Store>> store = OpenExistingStore(*address);
  if (!store.ok()) {
    PrintError(store.status());
    return ExitCodeFor(store.status());
  }
  std::vector<std::string> names;
  if (!flags.group.empty()) {
    names = {flags.group};
  } else {
    Result<std::vector<std::string>> stored = StoredGroups(**store);
    if (!stored.ok()) {
      PrintError(stored.status());
      return kExitFailure;
    }
    names = *stored;
  }
  Result<std::vector<WorkerReport>> reports = (*store)->ListWorkers();
  if (!reports.ok()) {
    PrintError(reports.status());
    return kExitFailure;
  }
  const std::int64_t now_ms = SystemStoreClock().NowMs();
  std::vector<GroupStatus> groups;
  std::map<std::string, std::uint64_t> counters;  // the stages' own, over all workers
  for (const std::string& name : names) {
    Result<StoreSummary> summary = (*store)->Summarize(name);
    if (!summary.ok()) {
      PrintError(summary.status());
      return kExitFailure;
    }
    GroupStatus& group = groups.emplace_back();
    group.name = name;
    group.summary = *summary;
    for (const WorkerReport& w : *reports) {
      if (w.group != name) continue;
      if (!w.counters_json.empty()) {
        const nlohmann::json parsed =
            nlohmann::json::parse(w.counters_json, nullptr, false);
        if (parsed.is_object()) {
          for (const auto& [key, value] : parsed.items()) {
            if (value.is_number_unsigned()) counters[key] += value.get<std::uint64_t>();
          }
        }
      }
      if (w.stopped || now_ms - w.updated_ms > kLiveReportMs) {
        ++group.ended;
        continue;
      }
      group.rate += RateOf(w);
      group.workers.push_back(w);
    }
  }
  // The last group's results are the pipeline's (each group carries the earlier
  // ones' fields and failures): the totals are told by it.
  const StoreSummary& s = groups.back().summary;
  Result<std::vector<WorkerSample>> samples = (*store)->ListSamples("");
  if (!samples.ok()) {
    PrintError(samples.status());
    return kExitFailure;
  }
  const RunPicture run = PictureOf(*samples, *reports, groups);
  // Processes on this machine report into the workdir; with only --store there is
  // none to read.
  const std::vector<LiveStatus> live =
      flags.workdir.empty() ? std::vector<LiveStatus>() : ReadLiveStatuses(flags.workdir);
  if (flags.json) {
    nlohmann::json workers = nlohmann::json::array();
    for (const LiveStatus& w : live) {
      workers.push_back({{"owner", w.owner},
                         {"updated_ms", w.updated_ms},
                         {"batches_held", w.progress.batches_in_flight},
                         {"records_in_flight", w.progress.records_in_flight},
                         {"records_done", w.progress.records_done},
                         {"items_committed", w.progress.items_committed},
                         {"batches_lost", w.progress.batches_lost},
                         {"renew_errors", w.progress.renew_errors}});
    }
    nlohmann::json per_group = nlohmann::json::array();
    for (const GroupStatus& g : groups) {
      nlohmann::json reporting = nlohmann::json::array();
      for (const WorkerReport& w : g.workers) {
        reporting.push_back({{"owner", w.owner},
                             {"host", w.host},
                             {"batches_held", w.batches_held},
                             {"items_committed", w.items_committed},
                             {"items_failed", w.items_failed},
                             {"last_renewal_ms", w.last_renewal_ms},
                             {"updated_ms", w.updated_ms},
                             {"items_per_second", RateOf(w)}});
      }
      per_group.push_back(
          {{"name", g.name},
           {"batches",
            {{"pending", g.summary.batches_pending},
             {"leased", g.summary.batches_leased},
             {"done", g.summary.batches_done}}},
           {"results",
            {{"ok", g.summary.results_ok},
             {"failed", g.summary.results_failed},
             {"filtered", g.summary.results_filtered}}},
           {"failures", g.summary.failures},
           {"items_per_second", g.rate},
           {"workers", reporting},
           {"workers_ended", g.ended}});
    }
    nlohmann::json stages = nlohmann::json::array();
    for (const auto& [name, t] : run.stages) {
      stages.push_back({{"name", name},
                        {"group", t.group},
                        {"records", t.records},
                        {"mean_seconds", t.records > 0 ? t.seconds / t.records : 0.0},
                        {"p50_seconds", t.Quantile(0.5)},
                        {"p90_seconds", t.Quantile(0.9)},
                        {"p99_seconds", t.Quantile(0.99)}});
    }
    nlohmann::json out = {
        {"group", groups.back().name},
        {"items", s.items},
        {"batches",
         {{"pending", s.batches_pending},
          {"leased", s.batches_leased},
          {"done", s.batches_done}}},
        {"results",
         {{"ok", s.results_ok}, {"failed", s.results_failed}, {"filtered", s.results_filtered}}},
        {"failures", s.failures},
        {"rejected_lines", s.rejected_lines},
        {"inputs", {{"total", s.inputs}, {"complete", s.inputs_complete}}},
        {"workers", workers},
        {"groups", per_group},
        {"counters", counters},
        {"run",
         {{"seconds", run.span_seconds},
          {"worker_runs", run.worker_runs},
          {"items_per_second", run.run_rate},
          {"live_items_per_second", run.live_rate},
          {"eta_seconds", run.eta_seconds >= 0 ? nlohmann::json(run.eta_seconds)
                                               : nlohmann::json(nullptr)},
          {"bytes_fetched", run.bytes_fetched}}},
        {"stages", stages},
    };
    fmt::print("{}\n", out.dump());
    return kExitOk;
  }
  std::uint64_t done = s.results();
  if (address->url.empty()) {
    fmt::print("workdir   {}\n", flags.workdir);
  } else {
    fmt::print("store     {}\n",
               DescribeStore(*address).substr(8));  // without "--store "
  }
  fmt::print("inputs    {} ({} completely ingested), {} rejected lines\n", s.inputs,
             s.inputs_complete, s.rejected_lines);
  fmt::print("items     {} ({} done, {:.1f}%)\n", s.items, done,
             s.items > 0 ? 100.0 * done / s.items : 0.0);
  for (const GroupStatus& g : groups) {
    const StoreSummary& gs = g.summary;
    fmt::print("{}batches   {} pending, {} leased, {} done{}\n",
               groups.size() > 1 ? "group " + g.name + ": " : "", gs.batches_pending,
               gs.batches_leased, gs.batches_done,
               g.workers.empty() ? std::string()
                                 : fmt::format("; {:.0f} items/s by {} workers", g.rate,
                                               g.workers.size()));
    if (groups.size() > 1 && &g != &groups.back()) {
      fmt::print("  results {} ok, {} failed{}\n", gs.results_ok, gs.results_failed,
                 gs.results_filtered > 0 ? fmt::format(", {} filtered", gs.results_filtered)
                                         : std::string());
    }
    for (const WorkerReport& w : g.workers) {
      fmt::print(
          "  worker  {} on {}: {} batches held, last renewal {}, {} committed, "
          "{:.0f} items/s\n",
          w.owner, w.host.empty() ? "?" : w.host, w.batches_held,
          Ago(now_ms, w.last_renewal_ms), w.items_committed, RateOf(w));
    }
    if (g.ended > 0) fmt::print("  ({} workers ended or gone quiet)\n", g.ended);
  }
  fmt::print("results   {} ok, {} failed{}\n", s.results_ok, s.results_failed,
             s.results_filtered > 0 ? fmt::format(", {} filtered", s.results_filtered)
                                    : std::string());
  for (const auto& [reason, count] : s.failures) {
    fmt::print("  {:<20} {}\n", reason, count);
  }
  if (run.worker_runs > 0) {
    fmt::print("rate      {:.1f} items/s over {} ({} worker runs){}{}\n", run.run_rate,
               ForPeople(run.span_seconds), run.worker_runs,
               run.live_rate > 0 ? fmt::format("; now {:.1f} items/s", run.live_rate)
                                 : std::string(),
               run.eta_seconds > 0
                   ? fmt::format("; {} left, about {}", s.items - done,
                                 ForPeople(run.eta_seconds))
                   : std::string());
  }
  if (run.bytes_fetched > 0) {
    fmt::print("fetched   {:.1f} MB ({:.2f} MB/s over the run)\n", run.bytes_fetched / 1e6,
               run.span_seconds > 0 ? run.bytes_fetched / 1e6 / run.span_seconds : 0.0);
  }
  for (const auto& [name, t] : run.stages) {
    if (t.records == 0) continue;
    fmt::print("stage     {:<10} {}{} records, {} mean, p50 {}, p99 {}\n", name,
               groups.size() > 1 ? "(" + t.group + ") " : std::string(), t.records,
               ShortSeconds(t.seconds / static_cast<double>(t.records)), ShortSeconds(t.Quantile(0.5)),
               ShortSeconds(t.Quantile(0.99)));
  }
  if (counters.contains("cache_hits_total") || counters.contains("cache_misses_total")) {
    const std::uint64_t hits = counters["cache_hits_total"];
    const std::uint64_t misses = counters["cache_misses_total"];
    const std::uint64_t shared = counters["cache_duplicate_hits_total"];
    fmt::print("cache     {} hits, {} misses ({:.1f}% hits), {:.1f} MB served from cache; {} "
               "items shared the download of the same URL in flight\n",
               hits, misses, hits + misses > 0 ? 100.0 * hits / (hits + misses) : 0.0,
               counters["cache_hit_bytes_total"] / 1e6, shared);
  }
  for (const LiveStatus& w : live) {
    fmt::print(
        "running   {}: {} batches held, {} records in flight, {} done, {} committed "
        "(updated {:.0f} s ago){}\n",
        w.owner, w.progress.batches_in_flight, w.progress.records_in_flight,
        w.progress.records_done, w.progress.items_committed,
        std::max<std::int64_t>(0, now_ms - w.updated_ms) / 1000.0,
        w.progress.batches_lost + w.progress.renew_errors > 0
            ? fmt::format("; {} leases lost, {} renewal errors", w.progress.batches_lost,
                          w.progress.renew_errors)
            : "");
  }
  return kExitOk;
}

}  // namespace

Command StatusCommandRow() {
  return Command{
      "status", "Show items, batches, results and failures of a store",
      [](std::vector<Flag>& flags) -> CommandRun {
        auto f = std::make_shared<StatusFlags>();
        flags.push_back(WorkdirFlag(&f->workdir, "The run's directory (unless --store)",
                                    /*required=*/false));
        flags.push_back(StoreFlag(&f->store));
        flags.push_back(GroupFlag(&f->group, "Stage group to report on"));
        flags.push_back(
            {.names = "--json", .help = "Print one JSON object", .target = &f->json});
        return [f] { return ShowStatus(*f); };
      }};
}

}  // namespace sluice::cli
