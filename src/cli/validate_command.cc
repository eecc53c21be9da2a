// `sluice validate PIPELINE.yaml [--set KEY=VALUE...]`: checks a pipeline without
// running it; errors name the YAML path.
#include <fmt/format.h>

#include "src/cli/command.h"
#include "src/cli/pipeline_setup.h"
#include "src/cli/workdir.h"

namespace sluice::cli {
namespace {

struct ValidateFlags {
  std::string pipeline;
  std::vector<std::string> sets;
};

int Validate(const ValidateFlags& flags) {
  Result<PipelineConfig> config = LoadPipeline(flags.pipeline, flags.sets);
  if (!config.ok()) {
    PrintError(config.status());
    return kExitUsage;
  }
  fmt::print("{}: ok: pipeline '{}', batch size {}, {} stages\n", flags.pipeline,
             config->name, config->batch_size, config->stages.size());
  for (const StageSpec& stage : config->stages) {
    fmt::print("  {} ({}) {}\n", stage.name, stage.type, stage.options_yaml);
  }
  return kExitOk;
}

}  // namespace

Command ValidateCommandRow() {
  return Command{
      "validate", "Check a pipeline file without running it",
      [](CLI::App& app) -> CommandRun {
        auto flags = std::make_shared<ValidateFlags>();
        app.add_option("pipeline", flags->pipeline, "Pipeline YAML file")->required();
        app.add_option("--set", flags->sets, "Override a setting: KEY=VALUE");
        return [flags] { return Validate(*flags); };
      }};
}

}  // namespace sluice::cli
