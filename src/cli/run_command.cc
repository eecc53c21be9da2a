// `sluice run PIPELINE --input FILE... --workdir DIR [--store URL]`: ingest, then
// process until every batch is done. The same command again resumes; on a finished
// workdir it does nothing and exits 0.
//
// `sluice worker PIPELINE --workdir DIR [--store URL] [--exit-when-done]`: the same
// without the ingest, one of many processes sharing a store (several on one
// machine's workdir, or on many machines through PostgreSQL): runs until stopped
// (SIGTERM drains as for `run`), or, with --exit-when-done, until the store has no
// batch left. --partition K/N: only batches whose id mod N is K. The workdir holds
// the outputs and the process's live status.
//
// A pipeline split in stage groups (`groups:`): `run`, and `worker` without
// --group, run one worker per group in this process, side by side; `worker --group
// NAME` runs only that group's stages. Batches travel between groups through the
// blob store: --blobs DIR, else the pipeline's blobs.dir, else (SQLite store only)
// <workdir>/blobs.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "src/cli/command.h"
#include "src/cli/live_status.h"
#include "src/cli/log.h"
#include "src/cli/metrics_server.h"
#include "src/cli/pipeline_setup.h"
#include "src/cli/progress_view.h"
#include "src/cli/workdir.h"
#include "src/core/blob_store.h"
#include "src/core/pipeline_config.h"
#include "src/core/worker.h"
#include "src/run/group_workers.h"

namespace sluice::cli {
namespace {

struct RunFlags {
  std::string pipeline;
  std::vector<std::string> inputs;
  std::string workdir;
  std::string store;
  bool worker = false;          // `sluice worker`: no ingest
  bool exit_when_done = false;  // worker: end when no batch is left
  std::string partition;        // worker: "K/N", only batches whose id mod N is K
  std::string group;            // worker: only this stage group ("" = every group)
  std::string blobs;            // --blobs DIR
  std::vector<std::string> sets;
  double status_interval_s = 5;
  bool quiet = false;
  std::string metrics_addr;  // --metrics-addr HOST:PORT ("" = no server)
  std::string progress = "auto";  // --progress auto|bar|plain|off
  std::string log_format = "text";  // --log-format text|json
};

// Waits for SIGINT/SIGTERM on its own thread (the signals are blocked everywhere
// else). The first asks the worker to stop; the second exits at once, which is safe:
// every commit is a transaction, and held leases simply expire. The first alone
// always ends the process: should the worker not have returned `deadline` after it
// (the grace period plus a margin: a stage stuck in a library call), the process
// exits all the same.
class SignalWatcher {
 public:
  SignalWatcher(std::vector<Worker*> workers, std::chrono::milliseconds deadline)
      : workers_(std::move(workers)), deadline_(deadline) {
    thread_ = std::thread([this] { Watch(); });
  }
  ~SignalWatcher() {
    done_ = true;
    thread_.join();
  }
  bool interrupted() const { return signals_ > 0; }

 private:
  void Watch() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    timespec timeout{0, 100'000'000};
    std::chrono::steady_clock::time_point first_signal;
    while (!done_) {
      int signal_number = sigtimedwait(&set, nullptr, &timeout);
      if (signal_number < 0) {
        if (signals_ > 0 && std::chrono::steady_clock::now() - first_signal > deadline_) {
          Log(LogLevel::kWarning,
              fmt::format(
                  "still not stopped {} s after the signal: exiting now; the batches "
                  "still held come back when their leases expire",
                  std::chrono::duration_cast<std::chrono::seconds>(deadline_).count()));
          _exit(kExitInterrupted);
        }
        continue;
      }
      if (++signals_ == 1) {
        first_signal = std::chrono::steady_clock::now();
        Log(LogLevel::kInfo,
            fmt::format(
                "{} received: finishing the batches in flight, then stopping (again to "
                "exit at once)",
                strsignal(signal_number)));
        for (Worker* worker : workers_) worker->RequestStop();
      } else {
        Log(LogLevel::kWarning, "exiting at once; the next run resumes");
        _exit(kExitInterrupted);
      }
    }
  }

  const std::vector<Worker*> workers_;
  const std::chrono::milliseconds deadline_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<int> signals_{0};
};

// Prints one status line every `interval` (none if zero) while the worker runs, and
// keeps the workdir's live status file current for `sluice status`.
class StatusPrinter {
 public:
  // `groups`: every group's worker, in order; the last one's items are the run's.
  // `bar`: the view redrawn in place (progress_view.h) instead of one line each time.
  StatusPrinter(std::vector<std::pair<std::string, const Worker*>> groups,
                std::string workdir, std::uint64_t total_items, std::uint64_t done_before,
                std::chrono::duration<double> interval, bool bar)
      : groups_(std::move(groups)),
        worker_(*groups_.back().second),
        workdir_(std::move(workdir)),
        total_(total_items),
        done_before_(done_before),
        interval_(interval),
        bar_(bar) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~StatusPrinter() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
    RemoveLiveStatus(workdir_);
  }

 private:
  static constexpr std::chrono::seconds kLiveEvery{2};

  void WriteLive(const WorkerProgress& progress) {
    LiveStatus live;
    live.owner = OwnerId();
    live.updated_ms = SystemStoreClock().NowMs();
    live.progress = progress;
    Status written = WriteLiveStatus(workdir_, live);
    if (!written.ok() && !live_warned_) {
      live_warned_ = true;  // once: `sluice status` then shows only the store
      Log(LogLevel::kWarning,
          fmt::format("live status for `sluice status` not written: {}",
                      written.ToString()));
    }
  }

  void Loop() {
    using std::chrono::steady_clock;
    const auto every = std::chrono::duration_cast<steady_clock::duration>(interval_);
    const auto tick = every.count() > 0
                          ? std::min<steady_clock::duration>(every, kLiveEvery)
                          : steady_clock::duration(kLiveEvery);
    auto last_time = steady_clock::now();
    steady_clock::time_point next_print = last_time + every;
    std::uint64_t last_done = 0;
    // The rate counts records through the pipeline, committed or not: with big
    // batches, commits alone would show 0 items/s for most of a run.
    std::unique_lock lock(mutex_);
    WriteLive(worker_.Progress());
    while (!wake_.wait_for(lock, tick, [&] { return stop_; })) {
      WorkerProgress progress = worker_.Progress();
      WriteLive(progress);
      auto now = std::chrono::steady_clock::now();
      if (every.count() <= 0 || now < next_print) continue;
      next_print = now + every;
      double seconds = std::chrono::duration<double>(now - last_time).count();
      const std::uint64_t through = std::max(progress.records_done, last_done);
      double rate = seconds > 0 ? (through - last_done) / seconds : 0;
      last_time = now;
      last_done = through;
      const std::uint64_t committed = done_before_ + progress.items_committed;
      const std::uint64_t done = std::min<std::uint64_t>(
          total_,
          done_before_ + std::max(progress.records_done, progress.items_committed));
      if (bar_) {
        // Smoothed, so that the ETA does not jump with each batch.
        smoothed_rate_ = smoothed_rate_ == 0 ? rate : 0.7 * smoothed_rate_ + 0.3 * rate;
        ProgressFrame frame;
        frame.total = total_;
        frame.done = done;
        frame.committed = committed;
        frame.failed = progress.items_failed;
        frame.rate = smoothed_rate_;
        frame.failures = progress.failures;
        for (const auto& [name, worker] : groups_) {
          frame.groups.emplace_back(name, worker->StageProgress());
        }
        const std::vector<std::string> lines = ProgressLines(frame);
        // A warning logged since the last drawing stays: the block goes below it.
        if (LoggedLines() != logged_at_draw_) drawn_lines_ = 0;
        const std::string text = Redraw(lines, drawn_lines_);
        logged_at_draw_ = LoggedLines();
        drawn_lines_ = lines.size();
        std::fwrite(text.data(), 1, text.size(), stderr);
        std::fflush(stderr);
        continue;
      }
      double percent = total_ > 0 ? 100.0 * done / total_ : 100.0;
      Log(LogLevel::kInfo,
          fmt::format(
              "done {}/{} items ({:.1f}%, committed {}), {:.0f} items/s, {} failed, "
              "{} in flight in {} batches",
              done, total_, percent, committed, rate, progress.items_failed,
              progress.records_in_flight, progress.batches_in_flight));
    }
  }

  const std::vector<std::pair<std::string, const Worker*>> groups_;
  const Worker& worker_;
  const std::string workdir_;
  bool live_warned_ = false;
  std::uint64_t total_;
  std::uint64_t done_before_;
  std::chrono::duration<double> interval_;
  const bool bar_;
  double smoothed_rate_ = 0;     // Loop() only
  std::size_t drawn_lines_ = 0;  // Loop() only: the block drawn last
  std::uint64_t logged_at_draw_ = 0;  // Loop() only: LoggedLines() when it was drawn
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;  // GUARDED_BY(mutex_)
};

// "K/N" -> {K, N}.
Result<LeasePartition> ParsePartition(const std::string& text) {
  LeasePartition partition;
  const std::size_t slash = text.find('/');
  char* end = nullptr;
  const std::string index = text.substr(0, slash);
  const std::string count = slash == std::string::npos ? "" : text.substr(slash + 1);
  const unsigned long k = std::strtoul(index.c_str(), &end, 10);
  const bool index_ok = !index.empty() && *end == '\0' && index[0] != '-';
  const unsigned long n = std::strtoul(count.c_str(), &end, 10);
  const bool count_ok = !count.empty() && *end == '\0' && count[0] != '-';
  if (!index_ok || !count_ok || k > 1'000'000 || n > 1'000'000) {
    return InvalidArgument(
        fmt::format("--partition {}: expected K/N with 0 <= K < N, e.g. 0/4", text));
  }
  partition.index = static_cast<std::uint32_t>(k);
  partition.count = static_cast<std::uint32_t>(n);
  if (Status status = CheckLeasePartition(partition); !status.ok()) {
    return InvalidArgument("--" + status.message());
  }
  return partition;
}

// Where batches travel between groups (see the top of the file), or an error saying
// what to give.
Result<std::filesystem::path> BlobsDir(const RunFlags& flags,
                                       const PipelineConfig& config,
                                       const StoreAddress& address) {
  if (!flags.blobs.empty()) return std::filesystem::path(flags.blobs);
  if (!config.blobs_dir.empty()) return std::filesystem::path(config.blobs_dir);
  if (address.url.empty()) return std::filesystem::path(flags.workdir) / "blobs";
  return InvalidArgument(fmt::format(
      "{}: the pipeline has stage groups ({}), whose workers pass batches through a blob "
      "directory they all share: give --blobs DIR or set blobs.dir in the pipeline",
      flags.pipeline, fmt::join(config.GroupNames(), ", ")));
}

int Run(const RunFlags& flags) {
  SetLogFormat(flags.log_format == "json" ? LogFormat::kJson : LogFormat::kText);
  LeasePartition partition;
  if (!flags.partition.empty()) {
    Result<LeasePartition> parsed = ParsePartition(flags.partition);
    if (!parsed.ok()) {
      PrintError(parsed.status());
      return kExitUsage;
    }
    partition = *parsed;
  }
  Result<PipelineConfig> config = LoadPipeline(flags.pipeline, flags.sets);
  if (!config.ok()) {
    PrintError(config.status());
    return kExitUsage;
  }
  std::vector<const GroupSpec*> groups;  // those this process runs
  if (!flags.group.empty()) {
    const GroupSpec* group = config->FindGroup(flags.group);
    if (group == nullptr) {
      PrintError(InvalidArgument(
          fmt::format("--group {}: {} has no such stage group ({})", flags.group,
                      flags.pipeline, fmt::join(config->GroupNames(), ", "))));
      return kExitUsage;
    }
    groups.push_back(group);
  } else {
    for (const GroupSpec& group : config->groups) groups.push_back(&group);
  }
  Result<StoreAddress> address = ResolveStoreAddress(flags.workdir, flags.store);
  if (!address.ok()) {
    PrintError(address.status());
    return kExitUsage;
  }
  std::unique_ptr<BlobStore> blobs;
  if (config->groups.size() > 1) {
    Result<std::filesystem::path> dir = BlobsDir(flags, *config, *address);
    if (!dir.ok()) {
      PrintError(dir.status());
      return kExitUsage;
    }
    Result<std::unique_ptr<BlobStore>> opened = OpenDirectoryBlobStore(*dir);
    if (!opened.ok()) {
      PrintError(opened.status());
      return kExitFailure;
    }
    blobs = std::move(opened).value();
  }
  Result<std::unique_ptr<Store>> opened = OpenOrCreateStore(*address);
  if (!opened.ok()) {
    PrintError(opened.status());
    return ExitCodeFor(opened.status());
  }
  Store& store = **opened;
  if (Status status = BindPipeline(store, *config, DescribeStore(*address));
      !status.ok()) {
    PrintError(status);
    return ExitCodeFor(status);
  }
  if (!flags.worker && !IngestInputs(store, *config, flags.inputs, flags.quiet)) {
    Log(LogLevel::kWarning,
        "not processing because an input failed; what was ingested is kept, "
        "and the next run resumes the input where it stopped");
    return kExitFailure;
  }

  // Progress is told by the last group this process runs: what it commits is done.
  const std::string& shown_group = groups.back()->name;
  Result<StoreSummary> before = store.Summarize(shown_group);
  if (!before.ok()) {
    PrintError(before.status());
    return kExitFailure;
  }
  const bool until_stopped = flags.worker && !flags.exit_when_done;
  if (before->items == 0 && !until_stopped) {
    Log(LogLevel::kInfo, fmt::format("nothing to do: the store has no items{}",
                                     flags.worker ? " (`sluice ingest` loads them)"
                                     : flags.inputs.empty() ? " (give --input FILE)"
                                                            : ""));
    return kExitOk;
  }

  GroupWorkersOptions run_options;
  run_options.groups = groups;
  run_options.workdir = flags.workdir;
  run_options.blobs = blobs.get();
  run_options.until_stopped = until_stopped;
  run_options.partition = partition;
  run_options.log = CommandLog();
  Result<std::unique_ptr<GroupWorkers>> created =
      GroupWorkers::Create(*config, DefaultRegistry(), store, run_options);
  if (!created.ok()) {
    PrintError(created.status());
    return ExitCodeFor(created.status());
  }
  GroupWorkers& runs = **created;
  // Until here a signal kills the process, which is safe (every ingest step is a
  // transaction). From here on, block the stop signals in every thread, including
  // the workers', so that SignalWatcher alone takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const std::uint64_t done_before = before->results();
  auto started = std::chrono::steady_clock::now();
  std::vector<Result<WorkerEnd>> ends;
  bool interrupted = false;
  std::unique_ptr<MetricsServer> metrics;
  if (!flags.metrics_addr.empty()) {
    Result<MetricsAddress> metrics_address = ParseMetricsAddress(flags.metrics_addr);
    if (!metrics_address.ok()) {
      PrintError(metrics_address.status());
      return kExitUsage;
    }
    std::vector<MetricsGroup> served;
    for (const auto& [name, worker] : runs.workers()) served.push_back({name, worker});
    Result<std::unique_ptr<MetricsServer>> started_server =
        MetricsServer::Start(*metrics_address, std::move(served), &store, config->name);
    if (!started_server.ok()) {
      PrintError(started_server.status());
      return kExitFailure;
    }
    metrics = std::move(started_server).value();
    Log(LogLevel::kInfo, fmt::format("metrics on {}/metrics", metrics->Url()));
  }
  {
    std::vector<Worker*> workers;
    for (const auto& [name, worker] : runs.workers()) workers.push_back(worker);
    SignalWatcher signals(workers, config->grace + std::chrono::seconds(30));
    // --progress: auto is the bar on a terminal, the status line elsewhere.
    const bool bar =
        flags.progress == "bar" || (flags.progress == "auto" && isatty(STDERR_FILENO) != 0);
    double interval = flags.quiet || flags.progress == "off" ? 0 : flags.status_interval_s;
    if (bar && interval > 0) interval = std::min(interval, 1.0);  // redrawn each second
    std::vector<std::pair<std::string, const Worker*>> shown;
    for (const auto& [name, worker] : runs.workers()) shown.emplace_back(name, worker);
    StatusPrinter printer(std::move(shown), flags.workdir, before->items, done_before,
                          std::chrono::duration<double>(interval), bar);
    ends = runs.Run();
    interrupted = signals.interrupted();
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  bool failed = false;
  bool stalled = false;
  bool finished = true;
  for (const Result<WorkerEnd>& end : ends) {
    if (!end.ok()) {
      PrintError(end.status());
      failed = true;
    } else {
      stalled |= *end == WorkerEnd::kStalled;
      finished &= *end == WorkerEnd::kFinished;
    }
  }
  if (failed) return kExitFailure;
  Result<StoreSummary> after = store.Summarize(shown_group);
  if (!after.ok()) {
    PrintError(after.status());
    return kExitFailure;
  }
  std::string failures;
  for (const auto& [reason, count] : after->failures) {
    failures += fmt::format("{}{} {}", failures.empty() ? "" : ", ", reason, count);
  }
  const WorkerProgress progress = runs.last_worker().Progress();
  Log(LogLevel::kInfo,
      fmt::format("{} items processed{} in {:.1f} s ({:.0f} items/s); store: {} ok, {} "
                  "failed{}{}{}",
                  progress.items_committed,
                  config->groups.size() > 1 ? " by group " + shown_group : std::string(),
                  seconds, seconds > 0 ? progress.items_committed / seconds : 0.0,
                  after->results_ok, after->results_failed, failures.empty() ? "" : " (",
                  failures.empty() ? "" : failures + ")",
                  after->results_filtered > 0
                      ? fmt::format(", {} filtered", after->results_filtered)
                      : std::string()));
  // The reduce results once every item has one (this process's part of a cluster
  // may end before the others'); else the view of what this process committed.
  if (Status written = runs.WriteReduceResults(
          *config, finished && after->results() == after->items, CommandLog());
      !written.ok()) {
    PrintError(written);
    return kExitFailure;
  }
  const FileBatchOutput* output = runs.output();
  if (finished) {
    Log(LogLevel::kInfo,
        fmt::format("done; results: sluice export {}{}", DescribeStore(*address),
                    output != nullptr ? "; outputs in " + output->root().string()
                                      : std::string()));
    return kExitOk;
  }
  if (stalled) {
    Log(LogLevel::kWarning,
        fmt::format("gave up after a stall (see above) with {} of {} items done; its "
                    "leases are released: run the same command to resume",
                    after->results(), after->items));
    return kExitFailure;
  }
  Log(LogLevel::kInfo,
      fmt::format("stopped with {} of {} items done; run the same command to resume",
                  after->results(), after->items));
  // A worker that runs until stopped ends by a signal: that is its normal end.
  if (until_stopped && interrupted) return kExitOk;
  return interrupted ? kExitInterrupted : kExitFailure;
}

}  // namespace

// The flags `run` and `worker` share.
void AddRunFlags(std::vector<Flag>& flags, RunFlags& f) {
  flags.push_back(PipelineFlag(&f.pipeline, /*must_exist=*/true));
  flags.push_back(
      WorkdirFlag(&f.workdir,
                  "Directory holding the outputs (and the store, unless --store); "
                  "created if missing"));
  flags.push_back(StoreFlag(&f.store));
  flags.push_back(
      SetFlag(&f.sets, "Override a pipeline setting: KEY=VALUE (e.g. stages.wait.ms=5)"));
  flags.push_back({.names = "--status-interval",
                   .help = "Seconds between status lines; 0 for none",
                   .target = &f.status_interval_s,
                   .range = std::pair{0.0, 3600.0}});
  flags.push_back({.names = "--log-format",
                   .help =
                       "text (default): 'sluice: MESSAGE' lines; json: one object per "
                       "line with time, level and message",
                   .target = &f.log_format,
                   .one_of = {"text", "json"}});
  flags.push_back({.names = "--progress",
                   .help = "bar: a view per stage redrawn in place each second; plain: a "
                           "status line every --status-interval; off; auto (default): bar "
                           "on a terminal, plain elsewhere",
                   .target = &f.progress,
                   .one_of = {"auto", "bar", "plain", "off"}});
  flags.push_back({.names = "--metrics-addr",
                   .help = "Serve /metrics (Prometheus), /api/status, /healthz and /ready "
                           "on HOST:PORT (:PORT: 127.0.0.1; port 0: any free one)",
                   .target = &f.metrics_addr});
  flags.push_back({.names = "--quiet,-q",
                   .help = "Print only warnings, errors and the summary",
                   .target = &f.quiet});
  flags.push_back({.names = "--blobs",
                   .help =
                       "With stage groups: the directory where batches pass from one "
                       "group to the next, shared by all workers (default: the "
                       "pipeline's blobs.dir, or <workdir>/blobs with a SQLite store)",
                   .target = &f.blobs});
}

Command RunCommandRow() {
  return Command{
      "run", "Ingest inputs and run a pipeline until every item is done (resumable)",
      [](std::vector<Flag>& flags) -> CommandRun {
        auto f = std::make_shared<RunFlags>();
        AddRunFlags(flags, *f);
        flags.push_back(
            {.names = "--input,-i",
             .help = "Input file (text, csv, tsv or jsonl; .gz or .zst ok); repeatable",
             .target = &f->inputs,
             .existing_file = true});
        return [f] { return Run(*f); };
      }};
}

Command WorkerCommandRow() {
  return Command{
      "worker",
      "Process a store's batches, one of many workers, until stopped (no ingest)",
      [](std::vector<Flag>& flags) -> CommandRun {
        auto f = std::make_shared<RunFlags>();
        f->worker = true;
        AddRunFlags(flags, *f);
        flags.push_back({.names = "--exit-when-done",
                         .help = "End once the store has no batch left to process",
                         .target = &f->exit_when_done});
        flags.push_back({.names = "--partition",
                         .help = "K/N: lease only batches whose id mod N is K",
                         .target = &f->partition});
        flags.push_back(GroupFlag(&f->group,
                                  "Run only this stage group's stages (default: every "
                                  "group of the pipeline, side by side)"));
        return [f] { return Run(*f); };
      }};
}

}  // namespace sluice::cli
