// `sluice status --workdir DIR [--json]`: what the store holds.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "src/cli/command.h"
#include "src/cli/workdir.h"

namespace sluice::cli {
namespace {

struct StatusFlags {
  std::string workdir;
  std::string group = "main";
  bool json = false;
};

int ShowStatus(const StatusFlags& flags) {
  Result<std::unique_ptr<Store>> store = OpenExistingStore(flags.workdir);
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
  if (flags.json) {
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
    };
    fmt::print("{}\n", out.dump());
    return kExitOk;
  }
  std::uint64_t done = s.results_ok + s.results_failed;
  fmt::print("workdir   {}\n", flags.workdir);
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
  return kExitOk;
}

}  // namespace

Command StatusCommandRow() {
  return Command{
      "status", "Show items, batches, results and failures of a workdir",
      [](std::vector<Flag>& flags) -> CommandRun {
        auto f = std::make_shared<StatusFlags>();
        flags.push_back(WorkdirFlag(&f->workdir));
        flags.push_back(GroupFlag(&f->group, "Stage group to report on"));
        flags.push_back(
            {.names = "--json", .help = "Print one JSON object", .target = &f->json});
        return [f] { return ShowStatus(*f); };
      }};
}

}  // namespace sluice::cli
