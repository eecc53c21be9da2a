// `sluice retry (--workdir DIR | --store URL) [--reason R] [--group G]`: puts failed
// items back to be processed by the next `sluice run` or `sluice worker`. In a
// pipeline split in stage groups they are redone from the first group on
// (Store::RetryFailed).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "src/cli/command.h"
#include "src/cli/log.h"
#include "src/cli/pipeline_setup.h"
#include "src/cli/workdir.h"

namespace sluice::cli {
namespace {

struct RetryFlags {
  std::string workdir;
  std::string store;
  std::string group;  // "": the pipeline's only stage group
  std::string reason;
};

int Retry(const RetryFlags& flags) {
  std::optional<FailureReason> reason;
  if (!flags.reason.empty()) {
    reason = ParseFailureReason(flags.reason);
    if (!reason) {
      std::vector<std::string_view> names;
      for (FailureReason known : AllFailureReasons())
        names.push_back(FailureReasonName(known));
      PrintError(InvalidArgument(fmt::format("--reason {}: unknown reason (known: {})",
                                             flags.reason, fmt::join(names, ", "))));
      return kExitUsage;
    }
  }
  int exit_code = kExitOk;
  std::unique_ptr<Store> store = OpenStoreOfFlags(flags.workdir, flags.store, &exit_code);
  if (store == nullptr) return exit_code;
  Result<std::vector<std::string>> groups = StoredGroups(*store);
  if (!groups.ok()) {
    PrintError(groups.status());
    return kExitFailure;
  }
  // An item's outcome is its result in the last group (where a failure in an
  // earlier group travels to as well): by default, the items failed there.
  const std::string group = flags.group.empty() ? groups->back() : flags.group;
  if (std::find(groups->begin(), groups->end(), group) == groups->end()) {
    PrintError(InvalidArgument(fmt::format("--group {}: no such stage group (the "
                                           "pipeline's groups: {})",
                                           group, fmt::join(*groups, ", "))));
    return kExitUsage;
  }
  Result<std::uint64_t> retried = store->RetryFailed(group, reason);
  if (!retried.ok()) {
    PrintError(retried.status());
    return kExitFailure;
  }
  Log(LogLevel::kInfo,
      fmt::format("{} failed items{} put back; `sluice run` processes them again",
                  *retried, reason ? fmt::format(" ({})", flags.reason) : ""));
  return kExitOk;
}

}  // namespace

Command RetryCommandRow() {
  return Command{
      "retry", "Put failed items back to be processed by the next run or worker",
      [](std::vector<Flag>& flags) -> CommandRun {
        auto f = std::make_shared<RetryFlags>();
        flags.push_back(WorkdirFlag(&f->workdir, "The run's directory (unless --store)",
                                    /*required=*/false));
        flags.push_back(StoreFlag(&f->store));
        flags.push_back({.names = "--reason",
                         .help = "Only items that failed for this reason (e.g. timeout)",
                         .target = &f->reason});
        flags.push_back(GroupFlag(&f->group,
                                  "Retry the items that failed in this stage group (default: "
                                  "the last; they are redone from the first group on)"));
        return [f] { return Retry(*f); };
      }};
}

}  // namespace sluice::cli
