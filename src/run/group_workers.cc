#include "src/run/group_workers.h"

#include <fmt/format.h>

#include <thread>

#include "src/core/owner_id.h"

namespace sluice {
namespace {

// The writer of the pipeline's `output:` section, or nullptr when it writes nothing.
// Creates the output root and removes what a crashed run left there (temporary
// names of processes that no longer run).
std::filesystem::path OutputRoot(const PipelineConfig& config, const std::string& workdir) {
  return config.output.dir.empty() ? std::filesystem::path(workdir) / "output"
                                   : std::filesystem::path(config.output.dir);
}

Result<std::unique_ptr<FileBatchOutput>> MakeOutput(const PipelineConfig& config,
                                                    const std::string& workdir) {
  if (!config.output.enabled()) return std::unique_ptr<FileBatchOutput>();
  auto output = std::make_unique<FileBatchOutput>(config.output, config.batch_size,
                                                  OutputRoot(config, workdir));
  SLUICE_RETURN_IF_ERROR(output->Prepare());
  return output;
}

// The reduce nodes' outputs around `inner` (the pipeline's other outputs, or
// nullptr), or nullptr when the pipeline has no reduce.
Result<std::unique_ptr<ReduceOutput>> MakeReduceOutput(const PipelineConfig& config,
                                                       const std::string& workdir,
                                                       BatchOutput* inner) {
  if (config.reducers.empty()) return std::unique_ptr<ReduceOutput>();
  std::vector<std::shared_ptr<const ReduceSpec>> specs;
  for (const ReduceNodeSpec& reducer : config.reducers) specs.push_back(reducer.spec);
  auto output =
      std::make_unique<ReduceOutput>(std::move(specs), OutputRoot(config, workdir), inner);
  SLUICE_RETURN_IF_ERROR(output->Prepare());
  return output;
}

// The options every group's worker shares.
WorkerOptions BaseOptions(const PipelineConfig& config, const GroupWorkersOptions& run) {
  WorkerOptions options;
  options.lease = config.lease;
  options.grace = config.grace;
  options.stall_timeout = config.stall;
  options.exit_when_done = !run.until_stopped;
  options.partition = run.partition;
  options.runtime.cpu_threads = config.cpu_threads;
  options.runtime.chunk_size = config.chunk_size;
  // The worker tells what goes wrong (once per cause, with a count at the end) and
  // what it cleaned up: warnings of the run.
  options.log = [log = run.log](std::string_view line) { log.Warning(line); };
  return options;
}

}  // namespace

Result<std::unique_ptr<GroupWorkers>> GroupWorkers::Create(
    const PipelineConfig& config, const StageRegistry& registry, Store& store,
    const GroupWorkersOptions& options) {
  std::vector<const GroupSpec*> groups = options.groups;
  if (groups.empty()) {
    for (const GroupSpec& group : config.groups) groups.push_back(&group);
  }
  if (groups.empty()) return InvalidArgument("the pipeline has no stage group");
  if (config.groups.size() > 1 && options.blobs == nullptr) {
    return Internal("a pipeline with stage groups runs with a blob store");
  }
  std::unique_ptr<GroupWorkers> workers(new GroupWorkers());
  for (const GroupSpec* group : groups) {
    Result<std::uint64_t> released =
        store.ReleaseLeasesOfDeadOwners(group->name, IsDeadLocalOwner);
    if (released.ok() && *released > 0) {
      options.log.Info(
          fmt::format("took back {} batches of group {} left leased by a stopped process",
                      *released, group->name));
    }
    SLUICE_ASSIGN_OR_RETURN(std::vector<NamedStage> stages,
                            BuildStages(config, registry, group));
    const bool last = group == &config.groups.back();
    GroupRun run;
    run.group = group;
    if (last) {
      SLUICE_ASSIGN_OR_RETURN(run.output, MakeOutput(config, options.workdir));
      SLUICE_ASSIGN_OR_RETURN(run.reduce,
                              MakeReduceOutput(config, options.workdir, run.output.get()));
    }
    WorkerOptions worker_options = BaseOptions(config, options);
    worker_options.group = group->name;
    if (group != &config.groups.front())
      worker_options.previous_group = (group - 1)->name;
    worker_options.has_next_group = !last;
    worker_options.blobs = options.blobs;
    worker_options.payload_decoders = &registry;
    // The stages hold at most in_flight_batches batches' worth of records; more
    // batches may be open, waiting only for their slowest records.
    const std::size_t in_flight = InFlightBatches(config, stages);
    worker_options.max_records_in_flight = in_flight * config.batch_size;
    worker_options.max_batches_in_flight = OpenBatches(config, in_flight);
    BatchOutput* batch_output = run.reduce != nullptr
                                    ? static_cast<BatchOutput*>(run.reduce.get())
                                    : run.output.get();
    run.worker = std::make_unique<Worker>(store, worker_options, std::move(stages),
                                          batch_output);
    workers->runs_.push_back(std::move(run));
  }
  return workers;
}

std::vector<Result<WorkerEnd>> GroupWorkers::Run() {
  std::vector<Result<WorkerEnd>> ends(runs_.size(), WorkerEnd::kStopped);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i + 1 < runs_.size(); ++i) {
    threads.emplace_back([this, &ends, i] {
      ends[i] = runs_[i].worker->Run();
      // A group that cannot go on leaves nothing for the ones after it.
      if (!ends[i].ok()) RequestStop();
    });
  }
  ends.back() = runs_.back().worker->Run();
  if (!ends.back().ok()) RequestStop();
  for (std::thread& thread : threads) thread.join();
  return ends;
}

void GroupWorkers::RequestStop() {
  for (GroupRun& run : runs_) run.worker->RequestStop();
}

std::vector<std::pair<std::string, Worker*>> GroupWorkers::workers() const {
  std::vector<std::pair<std::string, Worker*>> workers;
  for (const GroupRun& run : runs_)
    workers.emplace_back(run.group->name, run.worker.get());
  return workers;
}

Status GroupWorkers::WriteReduceResults(const PipelineConfig& config, bool complete,
                                        const RunLog& log) const {
  ReduceOutput* reduce = runs_.back().reduce.get();
  if (reduce == nullptr) return Status::Ok();
  SLUICE_RETURN_IF_ERROR(complete ? reduce->WriteResults() : reduce->WriteViews());
  for (const ReduceNodeSpec& reducer : config.reducers) {
    log.Info(fmt::format("reduce {}{}: {}", reducer.spec->name, complete ? "" : " (so far)",
                         reduce->ResultPath(*reducer.spec).string()));
  }
  return Status::Ok();
}

}  // namespace sluice
