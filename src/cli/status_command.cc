// `sluice status (--workdir DIR | --store URL) [--json]`: what the store holds.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "src/cli/command.h"
#include "src/cli/live_status.h"
#include "src/cli/pipeline_setup.h"
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
            {{"ok", g.summary.results_ok}, {"failed", g.summary.results_failed}}},
           {"failures", g.summary.failures},
           {"items_per_second", g.rate},
           {"workers", reporting},
           {"workers_ended", g.ended}});
    }
    nlohmann::json out = {
        {"group", groups.back().name},
        {"items", s.items},
        {"batches",
         {{"pending", s.batches_pending},
          {"leased", s.batches_leased},
          {"done", s.batches_done}}},
        {"results", {{"ok", s.results_ok}, {"failed", s.results_failed}}},
        {"failures", s.failures},
        {"rejected_lines", s.rejected_lines},
        {"inputs", {{"total", s.inputs}, {"complete", s.inputs_complete}}},
        {"workers", workers},
        {"groups", per_group},
        {"counters", counters},
    };
    fmt::print("{}\n", out.dump());
    return kExitOk;
  }
  std::uint64_t done = s.results_ok + s.results_failed;
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
      fmt::print("  results {} ok, {} failed\n", gs.results_ok, gs.results_failed);
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
  fmt::print("results   {} ok, {} failed\n", s.results_ok, s.results_failed);
  for (const auto& [reason, count] : s.failures) {
    fmt::print("  {:<20} {}\n", reason, count);
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
