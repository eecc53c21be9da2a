// `sluice plan --items N --deadline DURATION [--workdir DIR | --store URL]
// [--cost-per-core-hour PRICE]`: the rate a deadline needs and, from a measured run
// (what its workers reported to the store), what it takes to reach it, with the
// arithmetic shown:
//   - per stage group, the measured rate of one worker and the workers needed;
//   - per CPU stage, its time per record on one core (the pool's time in the stage),
//     so the items per second one core gives and the cores it needs;
//   - per async stage (fetch), its mean time per record, so the records it must hold
//     in flight at the rate (Little's law: in flight = rate x time), to set against
//     its max_in_flight per worker;
//   - the group's CPU stages together: the cores needed, and with a price, the cost.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "src/cli/command.h"
#include "src/cli/counter_keys.h"
#include "src/cli/pipeline_setup.h"
#include "src/cli/workdir.h"

namespace sluice::cli {
namespace {

struct PlanFlags {
  double items = 0;
  std::string deadline;
  std::string workdir;
  std::string store;
  double cost_per_core_hour = 0;
};

// "7d", "36h", "90m", "3600s" (or a plain number of seconds); nullopt otherwise.
std::optional<double> ParseDuration(std::string_view text) {
  double number = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc() || !(number > 0) || !std::isfinite(number)) return std::nullopt;
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  if (unit.empty() || unit == "s") return number;
  if (unit == "m") return number * 60;
  if (unit == "h") return number * 3600;
  if (unit == "d") return number * 86400;
  if (unit == "w") return number * 7 * 86400;
  return std::nullopt;
}

// 1234567 -> "1,234,567".
std::string Thousands(double value) {
  const std::string digits = fmt::format("{:.0f}", std::abs(std::round(value)));
  std::string out = value <= -0.5 ? "-" : "";
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

// A duration in the largest unit that keeps it readable.
std::string Human(double seconds) {
  if (seconds >= 86400) return fmt::format("{:.3g} days", seconds / 86400);
  if (seconds >= 3600) return fmt::format("{:.3g} h", seconds / 3600);
  if (seconds >= 1) return fmt::format("{:.3g} s", seconds);
  return fmt::format("{:.3g} ms", seconds * 1000);
}

struct StageMeasure {
  std::uint64_t index = 0;  // its place in the group
  std::uint64_t records = 0;
  double seconds = 0;  // summed over the records
  bool async = false;
};

// What the store's worker reports of `group` add up to.
struct GroupMeasure {
  int workers = 0;
  std::uint64_t items = 0;
  double worker_seconds = 0;
  std::vector<std::string> stage_order;
  std::map<std::string, StageMeasure> stages;
};

GroupMeasure Measure(const std::vector<WorkerReport>& reports, const std::string& group) {
  GroupMeasure measure;
  for (const WorkerReport& report : reports) {
    if (report.group != group || report.updated_ms <= report.started_ms) continue;
    ++measure.workers;
    measure.items += report.items_committed;
    measure.worker_seconds += static_cast<double>(report.updated_ms - report.started_ms) / 1000;
    for (const auto& [key, number] : ParseCounters(report.counters_json)) {
      const CounterKey parsed = ParseCounterKey(key);
      const std::string stage = parsed.Label("stage");
      if (stage.empty() || parsed.labels.size() != 1) continue;
      const std::string& name = parsed.name;
      if (!measure.stages.contains(stage)) measure.stage_order.push_back(stage);
      StageMeasure& s = measure.stages[stage];
      if (name == "stage_records_total") s.records += number;
      if (name == "stage_us_total") s.seconds += static_cast<double>(number) / 1e6;
      if (name == "stage_async") s.async = true;
      if (name == "stage_index") s.index = number;
    }
  }
  std::sort(measure.stage_order.begin(), measure.stage_order.end(),
            [&](const std::string& a, const std::string& b) {
              return measure.stages[a].index < measure.stages[b].index;
            });
  return measure;
}

int Plan(const PlanFlags& flags) {
  if (!(flags.items >= 1)) {
    PrintError(InvalidArgument("--items: at least 1"));
    return kExitUsage;
  }
  const std::optional<double> deadline = ParseDuration(flags.deadline);
  if (!deadline) {
    PrintError(InvalidArgument(fmt::format(
        "--deadline {}: expected a duration such as 7d, 36h, 90m or 3600s", flags.deadline)));
    return kExitUsage;
  }
  const double rate = flags.items / *deadline;
  fmt::print("needed: {} items in {} ({} s) = {} / {} = {} items/s\n", Thousands(flags.items),
             flags.deadline, Thousands(*deadline), Thousands(flags.items),
             Thousands(*deadline), Thousands(rate));
  if (flags.workdir.empty() && flags.store.empty()) {
    fmt::print("(give --workdir or --store of a measured run for what it takes)\n");
    return kExitOk;
  }

  int exit_code = kExitOk;
  std::unique_ptr<Store> store = OpenStoreOfFlags(flags.workdir, flags.store, &exit_code);
  if (store == nullptr) return exit_code;
  Result<std::vector<std::string>> groups = StoredGroups(*store);
  Result<std::vector<WorkerReport>> reports =
      groups.ok() ? store->ListWorkers() : Result<std::vector<WorkerReport>>(groups.status());
  if (!reports.ok()) {
    PrintError(reports.status());
    return kExitFailure;
  }
  double total_cores = 0;
  bool measured = false;
  for (const std::string& group : *groups) {
    const GroupMeasure m = Measure(*reports, group);
    fmt::print("\ngroup {}:\n", group);
    if (m.workers == 0 || m.items == 0) {
      fmt::print("  no measured worker yet (run it first: workers report every 5 s)\n");
      continue;
    }
    measured = true;
    const double per_worker = static_cast<double>(m.items) / m.worker_seconds;
    fmt::print("  measured: {} items by {} worker(s) in {:.1f} worker-seconds = {:.1f} "
               "items/s per worker\n",
               Thousands(static_cast<double>(m.items)), m.workers, m.worker_seconds,
               per_worker);
    fmt::print("  workers like those: {} / {:.1f} = {:.1f} -> {} workers\n", Thousands(rate),
               per_worker, rate / per_worker, Thousands(std::ceil(rate / per_worker)));
    double cpu_seconds = 0;
    for (const std::string& name : m.stage_order) {
      const StageMeasure& s = m.stages.at(name);
      if (s.records == 0) {
        fmt::print("  {}: no record timed\n", name);
        continue;
      }
      const double each = s.seconds / static_cast<double>(s.records);
      if (s.async) {
        fmt::print("  {} (waits): {} per record -> in flight {} x {:.4g} s = {} records at "
                   "once\n",
                   name, Human(each), Thousands(rate), each, Thousands(rate * each));
      } else {
        cpu_seconds += each;
        fmt::print("  {} (CPU): {} per record on one core = {:.1f} items/s per core -> {} / "
                   "{:.1f} = {:.1f} cores\n",
                   name, Human(each), 1 / each, Thousands(rate), 1 / each, rate * each);
      }
    }
    fmt::print("  the CPU stages together: {} per item -> {} x {:.4g} s = {:.1f} cores "
               "(the stages' own time: I/O threads and the process's overhead come on "
               "top)\n",
               Human(cpu_seconds), Thousands(rate), cpu_seconds, rate * cpu_seconds);
    total_cores += rate * cpu_seconds;
  }
  if (!measured) return kExitOk;
  fmt::print("\nall groups: {:.1f} cores for the CPU stages\n", total_cores);
  if (flags.cost_per_core_hour > 0) {
    const double hours = *deadline / 3600;
    fmt::print("cost: {:.1f} cores x {:.1f} h x {} per core-hour = {:.2f}\n", total_cores,
               hours, flags.cost_per_core_hour, total_cores * hours * flags.cost_per_core_hour);
  }
  return kExitOk;
}

}  // namespace

Command PlanCommandRow() {
  return Command{
      "plan", "The rate a deadline needs, and from a measured run the workers and cores",
      [](std::vector<Flag>& flags) -> CommandRun {
        auto f = std::make_shared<PlanFlags>();
        flags.push_back({.names = "--items",
                         .help = "How many items the run has to do (e.g. 2e9)",
                         .target = &f->items,
                         .required = true,
                         .range = std::pair{1.0, 1e15}});
        flags.push_back({.names = "--deadline",
                         .help = "In how long: 7d, 36h, 90m, 3600s",
                         .target = &f->deadline,
                         .required = true});
        flags.push_back(WorkdirFlag(&f->workdir, "A measured run's directory (unless --store)",
                                    /*required=*/false));
        flags.push_back(StoreFlag(&f->store));
        flags.push_back({.names = "--cost-per-core-hour",
                         .help = "The price of one core for one hour, for the cost",
                         .target = &f->cost_per_core_hour,
                         .range = std::pair{0.0, 1e6}});
        return [f] { return Plan(*f); };
      }};
}

}  // namespace sluice::cli
