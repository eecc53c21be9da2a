// `sluice validate PIPELINE.yaml [--set KEY=VALUE...] [--graph] [--dot]`: checks a
// pipeline without running it; errors name the YAML path. A valid pipeline is summed
// up with each node on a line of its own and its options below it, one per line,
// indented. --graph prints the graph instead: each node with what it reads and its
// branches; --dot prints it in Graphviz dot, alone (`| dot -Tsvg > graph.svg`).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <sstream>
#include <string>
#include <vector>

#include "src/cli/command.h"
#include "src/cli/pipeline_setup.h"
#include "src/cli/workdir.h"
#include "src/core/pipeline_graph.h"

namespace sluice::cli {
namespace {

struct ValidateFlags {
  std::string pipeline;
  std::vector<std::string> sets;
  bool graph = false;
  bool dot = false;
};

// The lines of a stage's options (its YAML mapping as LoadPipeline canonicalised
// it, in flow or block style as the file wrote it), in block style: one line per
// option, nested lists and maps on lines of their own below it. None for a stage
// without options.
std::vector<std::string> OptionLines(const std::string& options_yaml) {
  std::string block = options_yaml;
  try {
    YAML::Node options = YAML::Load(options_yaml);
    if (options.IsMap() && options.size() == 0) return {};
    options.SetStyle(YAML::EmitterStyle::Block);
    YAML::Emitter out;
    out << options;
    block = out.c_str();
  } catch (const YAML::Exception&) {
    // Not expected (LoadPipeline emitted it): show it as it is.
  }
  std::vector<std::string> lines;
  std::istringstream text(block);
  for (std::string line; std::getline(text, line);) {
    if (!line.empty()) lines.push_back(std::move(line));
  }
  return lines;
}

int Validate(const ValidateFlags& flags) {
  Result<PipelineConfig> config = LoadPipeline(flags.pipeline, flags.sets);
  if (!config.ok()) {
    PrintError(config.status());
    return kExitUsage;
  }
  if (flags.dot) {
    fmt::print("{}", GraphDot(*config));
    return kExitOk;
  }
  fmt::print("{}: ok: pipeline '{}', batch size {}, {} stages\n", flags.pipeline,
             config->name, config->batch_size, config->stages.size());
  if (config->groups.size() > 1) {
    // Which stages each group's workers run, and where batches pass between them.
    for (const GroupSpec& group : config->groups) {
      std::vector<std::string_view> names;
      for (std::size_t i = 0; i < group.stage_count; ++i) {
        names.push_back(config->stages[group.first_stage + i].name);
      }
      fmt::print("  group {}: {}\n", group.name, fmt::join(names, ", "));
    }
    fmt::print("  blobs: {}\n", config->blobs_dir.empty()
                                    ? "<workdir>/blobs (or --blobs DIR)"
                                    : config->blobs_dir);
  }
  if (flags.graph) {
    fmt::print("{}", GraphText(*config));
    return kExitOk;
  }
  for (const StageSpec& stage : config->stages) {
    fmt::print("  {} ({})\n", stage.name, stage.type);
    for (const std::string& line : OptionLines(stage.options_yaml)) {
      fmt::print("    {}\n", line);
    }
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
                   flags.push_back(
                       {.names = "--graph",
                        .help = "Print the graph: each node, what it reads, its branches",
                        .target = &f->graph});
                   flags.push_back({.names = "--dot",
                                    .help = "Print only the graph, in Graphviz dot",
                                    .target = &f->dot});
                   return [f] { return Validate(*f); };
                 }};
}

}  // namespace sluice::cli
