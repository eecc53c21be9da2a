// `sluice retry --workdir DIR [--reason R]`: puts failed items back to be processed
// by the next `sluice run`.
#include <fmt/format.h>

#include "src/cli/command.h"
#include "src/cli/workdir.h"

namespace sluice::cli {
namespace {

struct RetryFlags {
  std::string workdir;
  std::string group = "main";
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
  Result<std::unique_ptr<Store>> store = OpenExistingStore(flags.workdir);
  if (!store.ok()) {
    PrintError(store.status());
    return ExitCodeFor(store.status());
  }
  Result<std::uint64_t> retried = (*store)->RetryFailed(flags.group, reason);
  if (!retried.ok()) {
    PrintError(retried.status());
    return kExitFailure;
  }
  fmt::print(stderr,
             "sluice: {} failed items{} put back; `sluice run` processes them again\n",
             *retried, reason ? fmt::format(" ({})", flags.reason) : "");
  return kExitOk;
}

}  // namespace

Command RetryCommandRow() {
  return Command{
      "retry", "Put failed items back to be processed by the next run",
      [](CLI::App& app) -> CommandRun {
        auto flags = std::make_shared<RetryFlags>();
        app.add_option("--workdir,-w", flags->workdir, "The run's directory")->required();
        app.add_option("--reason", flags->reason,
                       "Only items that failed for this reason (e.g. timeout)");
        app.add_option("--group", flags->group, "Stage group");
        return [flags] { return Retry(*flags); };
      }};
}

}  // namespace sluice::cli
