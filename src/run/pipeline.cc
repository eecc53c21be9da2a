// The library's Pipeline (include/sluice/pipeline.h): what `sluice run --workdir`
// does, on the same steps (src/run/run_setup.h, src/run/group_workers.h).
#include "sluice/pipeline.h"

#include <fmt/format.h>

#include <filesystem>
#include <system_error>

#include "src/core/blob_store.h"
#include "src/core/pipeline_config.h"
#include "src/run/group_workers.h"
#include "src/run/run_setup.h"
#include "src/store/sqlite_store.h"

namespace sluice {

struct Pipeline::Impl {
  PipelineConfig config;
  const StageRegistry* registry = nullptr;
};

namespace {

RunLog LogOf(const RunOptions& options) {
  RunLog log;
  log.info = options.info;
  log.warning = options.warning;
  if (options.warning) {
    log.error = [sink = options.warning](const Status& status) {
      sink(status.ToString());
    };
  }
  return log;
}

// What the store holds for `group`, as a RunSummary.
Result<RunSummary> Summarize(Store& store, const std::string& group) {
  SLUICE_ASSIGN_OR_RETURN(StoreSummary summary, store.Summarize(group));
  RunSummary run;
  run.items = summary.items;
  run.ok = summary.results_ok;
  run.failed = summary.results_failed;
  run.filtered = summary.results_filtered;
  run.failures = summary.failures;
  run.rejected_lines = summary.rejected_lines;
  return run;
}

}  // namespace

Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pipeline::Pipeline(Pipeline&&) noexcept = default;
Pipeline& Pipeline::operator=(Pipeline&&) noexcept = default;
Pipeline::~Pipeline() = default;

Result<Pipeline> Pipeline::Load(const std::string& path, const StageRegistry& registry,
                                const std::vector<std::string>& sets) {
  auto impl = std::make_unique<Impl>();
  SLUICE_ASSIGN_OR_RETURN(impl->config, LoadPipelineWithSets(path, sets, registry));
  impl->registry = &registry;
  return Pipeline(std::move(impl));
}

Result<Pipeline> Pipeline::Parse(std::string_view yaml, std::string_view source,
                                 const StageRegistry& registry,
                                 const std::vector<std::string>& sets) {
  SLUICE_ASSIGN_OR_RETURN(std::vector<ConfigOverride> overrides, ParseOverrides(sets));
  auto impl = std::make_unique<Impl>();
  SLUICE_ASSIGN_OR_RETURN(impl->config, ParsePipeline(yaml, source, overrides, registry));
  impl->registry = &registry;
  return Pipeline(std::move(impl));
}

const std::string& Pipeline::name() const { return impl_->config.name; }

std::vector<std::string> Pipeline::GroupNames() const {
  return impl_->config.GroupNames();
}

const std::vector<std::string>& Pipeline::warnings() const {
  return impl_->config.warnings;
}

Result<RunSummary> Pipeline::Run(const RunOptions& options) const {
  const PipelineConfig& config = impl_->config;
  if (options.workdir.empty()) {
    return InvalidArgument(fmt::format("pipeline {}: no workdir given", config.name));
  }
  const std::string where = "workdir " + options.workdir;
  std::error_code error;
  std::filesystem::create_directories(options.workdir, error);
  if (error) {
    return IoError(fmt::format("{}: cannot create: {}", where, error.message()));
  }
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<Store> store,
                          OpenSqliteStore(WorkdirStorePath(options.workdir)));
  SLUICE_RETURN_IF_ERROR(BindPipeline(*store, config, where));
  const RunLog log = LogOf(options);
  SLUICE_RETURN_IF_ERROR(
      IngestInputs(*store, config, options.inputs, /*quiet=*/false, log));

  const std::string& last_group = config.groups.back().name;
  SLUICE_ASSIGN_OR_RETURN(RunSummary before, Summarize(*store, last_group));
  if (before.items == 0) return before;

  std::unique_ptr<BlobStore> blobs;
  if (config.groups.size() > 1) {
    const std::filesystem::path dir =
        config.blobs_dir.empty() ? std::filesystem::path(options.workdir) / "blobs"
                                 : std::filesystem::path(config.blobs_dir);
    SLUICE_ASSIGN_OR_RETURN(blobs, OpenDirectoryBlobStore(dir));
  }
  GroupWorkersOptions run_options;
  run_options.workdir = options.workdir;
  run_options.blobs = blobs.get();
  run_options.log = log;
  SLUICE_ASSIGN_OR_RETURN(
      std::unique_ptr<GroupWorkers> workers,
      GroupWorkers::Create(config, *impl_->registry, *store, run_options));
  const std::vector<Result<WorkerEnd>> ends = workers->Run();
  bool stalled = false;
  for (const Result<WorkerEnd>& end : ends) {
    SLUICE_RETURN_IF_ERROR(end.ToStatus());
    stalled |= *end == WorkerEnd::kStalled;
  }
  SLUICE_ASSIGN_OR_RETURN(RunSummary after, Summarize(*store, last_group));
  if (stalled) {
    return Unavailable(fmt::format(
        "pipeline {}: gave up after a stall with {} of {} items done; its leases are "
        "released: run again to resume",
        config.name, after.ok + after.failed + after.filtered, after.items));
  }
  bool finished = true;
  for (const Result<WorkerEnd>& end : ends) finished &= *end == WorkerEnd::kFinished;
  SLUICE_RETURN_IF_ERROR(workers->WriteReduceResults(
      config, finished && after.ok + after.failed + after.filtered == after.items, log));
  after.processed = workers->last_worker().Progress().items_committed;
  if (workers->output() != nullptr) after.output_dir = workers->output()->root().string();
  return after;
}

Status Pipeline::ForEachResult(
    const std::string& workdir,
    const std::function<Status(const ExportRow& row)>& row) const {
  const std::string path = WorkdirStorePath(workdir);
  std::error_code error;
  if (!std::filesystem::exists(path, error)) {
    return InvalidArgument(
        fmt::format("workdir {}: no sluice store here (expected {})", workdir, path));
  }
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, OpenSqliteStore(path));
  return store->ExportRows(impl_->config.groups.back().name, row);
}

}  // namespace sluice
