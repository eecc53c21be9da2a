// `sluice status (--workdir DIR | --store URL) [--json]`: what the store holds.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "src/cli/command.h"
#include "src/cli/pipeline_setup.h"
#include "src/cli/live_status.h"
#include "src/cli/workdir.h"

namespace sluice::cli {
namespace {

struct StatusFlags {
  std::string workdir;
  std::string store;
  std::string group = "main";
  bool json = false;
};

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
  Result<StoreSummary> summary = (*store)->Summarize(flags.group);
  if (!summary.ok()) {
    PrintError(summary.status());
    return kExitFailure;
  }
  const StoreSummary& s = *summary;
  // Processes on this machine report into the workdir; with only --store there is
  // none to read.
  const std::vector<LiveStatus> live =
      flags.workdir.empty() ? std::vector<LiveStatus>() : ReadLiveStatuses(flags.workdir);
  const std::int64_t now_ms = SystemStoreClock().NowMs();
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
    nlohmann::json out = {
        {"group", flags.group},
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
    };
    fmt::print("{}\n", out.dump());
    return kExitOk;
  }
  std::uint64_t done = s.results_ok + s.results_failed;
  if (address->url.empty()) {
    fmt::print("workdir   {}\n", flags.workdir);
  } else {
    fmt::print("store     {}\n", DescribeStore(*address).substr(8));  // without "--store "
  }
  fmt::print("inputs    {} ({} completely ingested), {} rejected lines\n", s.inputs,
             s.inputs_complete, s.rejected_lines);
  fmt::print("items     {} ({} done, {:.1f}%)\n", s.items, done,
             s.items > 0 ? 100.0 * done / s.items : 0.0);
  fmt::print("batches   {} pending, {} leased, {} done\n", s.batches_pending,
             s.batches_leased, s.batches_done);
  fmt::print("results   {} ok, {} failed\n", s.results_ok, s.results_failed);
  for (const auto& [reason, count] : s.failures) {
    fmt::print("  {:<20} {}\n", reason, count);
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
