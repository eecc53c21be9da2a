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
  return Command{"validate", "Check a pipeline file without running it",
                 [](std::vector<Flag>& flags) -> CommandRun {
                   auto f = std::make_shared<ValidateFlags>();
                   flags.push_back(PipelineFlag(&f->pipeline, /*must_exist=*/false));
                   flags.push_back(SetFlag(&f->sets));
                   return [f] { return Validate(*f); };
                 }};
}

}  // namespace sluice::cli
