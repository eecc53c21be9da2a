// The steps before a pipeline runs, shared by `sluice run`, `sluice ingest` and the
// library's Pipeline::Run (include/sluice/pipeline.h): where a workdir keeps its
// store, loading a pipeline with overrides, binding a store to one pipeline, and
// ingesting the input files.
#ifndef SLUICE_RUN_RUN_SETUP_H_
#define SLUICE_RUN_RUN_SETUP_H_

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/status.h"
#include "sluice/store.h"
#include "src/core/pipeline_config.h"

namespace sluice {

// Where the steps of a run tell what they do. An unset member drops its lines.
// The members may be called from several threads (the workers'), one line a call.
struct RunLog {
  std::function<void(std::string_view)> info;     // what was done ("input x: 3 items")
  std::function<void(std::string_view)> warning;  // what to look at; the run goes on
  std::function<void(const Status&)> error;       // an error a step went on past

  void Info(std::string_view line) const {
    if (info) info(line);
  }
  void Warning(std::string_view line) const {
    if (warning) warning(line);
  }
  void Error(const Status& status) const {
    if (error) error(status);
  }
};

// Parses `--set` overrides, "KEY=VALUE" each (ParseOverride); the first error.
Result<std::vector<ConfigOverride>> ParseOverrides(const std::vector<std::string>& sets);

// Loads a pipeline file with `sets` ("KEY=VALUE" overrides) applied.
Result<PipelineConfig> LoadPipelineWithSets(const std::string& path,
                                            const std::vector<std::string>& sets,
                                            const StageRegistry& registry);

// The SQLite store file inside a workdir: <workdir>/sluice.db.
std::string WorkdirStorePath(const std::string& workdir);

// Records the pipeline's fingerprint in a new store, or refuses a store made by a
// pipeline whose results would differ (other stages, batch size or input settings).
// `where` names the store in the message ("--workdir out", "--store URL").
// Also records the pipeline's stage groups (StoredGroups).
Status BindPipeline(Store& store, const PipelineConfig& config, const std::string& where);

// The meta key holding the stage groups' names, comma-separated, in order.
inline constexpr char kGroupsMeta[] = "pipeline_groups";

// The stage groups of the pipeline the store was made for, in order; {"main"} for a
// store that has not recorded them.
Result<std::vector<std::string>> StoredGroups(Store& store);

// Ingests every input, with a line per input (log.info; with `quiet`, none for an
// input ingested before) and the first rejected lines (log.warning). An input that
// fails is told (log.error) and the others are still ingested; returns the first
// such error (what it ingested is kept: the next call resumes it).
Status IngestInputs(Store& store, const PipelineConfig& config,
                    const std::vector<std::string>& inputs, bool quiet,
                    const RunLog& log);

}  // namespace sluice

#endif  // SLUICE_RUN_RUN_SETUP_H_
