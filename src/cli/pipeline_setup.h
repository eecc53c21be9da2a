// Steps shared by the commands that take a pipeline: load it with --set overrides,
// bind it to a workdir, ingest inputs.
#ifndef SLUICE_CLI_PIPELINE_SETUP_H_
#define SLUICE_CLI_PIPELINE_SETUP_H_

#include <string>
#include <vector>

#include "sluice/store.h"
#include "src/core/pipeline_config.h"

namespace sluice::cli {

// Loads a pipeline file with `sets` ("KEY=VALUE") applied, and logs its warnings
// (PipelineConfig::warnings) once.
Result<PipelineConfig> LoadPipeline(const std::string& path,
                                    const std::vector<std::string>& sets);

// Records the pipeline's fingerprint in a new store, or refuses a store made by a
// pipeline whose results would differ (other stages, batch size or input settings).
// `where` names the store in the message (DescribeStore).
// Also records the pipeline's stage groups (StoredGroups).
Status BindPipeline(Store& store, const PipelineConfig& config, const std::string& where);

// The meta key holding the stage groups' names, comma-separated, in order.
inline constexpr char kGroupsMeta[] = "pipeline_groups";

// The stage groups of the pipeline the store was made for, in order; {"main"} for a
// store that has not recorded them.
Result<std::vector<std::string>> StoredGroups(Store& store);

// Ingests every input, printing a line per input and the first rejected lines.
// Returns false if an input failed (its error is printed; what it ingested is kept).
bool IngestInputs(Store& store, const PipelineConfig& config,
                  const std::vector<std::string>& inputs, bool quiet);

}  // namespace sluice::cli

#endif  // SLUICE_CLI_PIPELINE_SETUP_H_
