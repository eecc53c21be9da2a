#include "src/cli/pipeline_setup.h"

#include <fmt/format.h>

#include <string>

#include "src/cli/log.h"
#include "src/cli/workdir.h"

namespace sluice::cli {

Result<PipelineConfig> LoadPipeline(const std::string& path,
                                    const std::vector<std::string>& sets) {
  Result<PipelineConfig> config = LoadPipelineWithSets(path, sets, DefaultRegistry());
  if (config.ok()) {
    for (const std::string& warning : config->warnings) {
      Log(LogLevel::kWarning, fmt::format("{}: warning: {}", path, warning));
    }
  }
  return config;
}

RunLog CommandLog() {
  RunLog log;
  log.info = [](std::string_view line) { Log(LogLevel::kInfo, line); };
  log.warning = [](std::string_view line) { Log(LogLevel::kWarning, line); };
  log.error = [](const Status& status) { PrintError(status); };
  return log;
}

bool IngestInputs(Store& store, const PipelineConfig& config,
                  const std::vector<std::string>& inputs, bool quiet) {
  return sluice::IngestInputs(store, config, inputs, quiet, CommandLog()).ok();
}

}  // namespace sluice::cli
