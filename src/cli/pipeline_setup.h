// Steps shared by the commands that take a pipeline: load it with --set overrides,
// ingest inputs. Binding a store to its pipeline is src/run/run_setup.h's.
#ifndef SLUICE_CLI_PIPELINE_SETUP_H_
#define SLUICE_CLI_PIPELINE_SETUP_H_

#include <string>
#include <vector>

#include "sluice/store.h"
#include "src/core/pipeline_config.h"
#include "src/run/run_setup.h"

namespace sluice::cli {

// Loads a pipeline file with `sets` ("KEY=VALUE") applied, and logs its warnings
// (PipelineConfig::warnings) once.
Result<PipelineConfig> LoadPipeline(const std::string& path,
                                    const std::vector<std::string>& sets);

// Ingests every input (IngestInputs of src/run/run_setup.h), telling what it does in
// the command's log. Returns false if an input failed (its error is printed; what it
// ingested is kept).
bool IngestInputs(Store& store, const PipelineConfig& config,
                  const std::vector<std::string>& inputs, bool quiet);

// The command's log as a RunLog: info and warning lines, errors as PrintError.
RunLog CommandLog();

}  // namespace sluice::cli

#endif  // SLUICE_CLI_PIPELINE_SETUP_H_
