// `sluice ingest PIPELINE.yaml --input FILE... --workdir DIR`: only the ingest step of
// `run`, e.g. to load a workdir once before starting workers, or to measure ingest.
#include <fmt/format.h>

#include <chrono>

#include "src/cli/command.h"
#include "src/cli/pipeline_setup.h"
#include "src/cli/workdir.h"

namespace sluice::cli {
namespace {

struct IngestFlags {
  std::string pipeline;
  std::vector<std::string> inputs;
  std::string workdir;
  std::vector<std::string> sets;
};

int Ingest(const IngestFlags& flags) {
  Result<PipelineConfig> config = LoadPipeline(flags.pipeline, flags.sets);
  if (!config.ok()) {
    PrintError(config.status());
    return kExitUsage;
  }
  Result<std::unique_ptr<Store>> store = OpenOrCreateStore(flags.workdir);
  if (!store.ok()) {
    PrintError(store.status());
    return ExitCodeFor(store.status());
  }
  if (Status status = BindPipeline(**store, *config, flags.workdir); !status.ok()) {
    PrintError(status);
    return ExitCodeFor(status);
  }
  auto started = std::chrono::steady_clock::now();
  bool ok = IngestInputs(**store, *config, flags.inputs, /*quiet=*/false);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  fmt::print(stderr, "sluice: ingest took {:.2f} s\n", seconds);
  return ok ? kExitOk : kExitFailure;
}

}  // namespace

Command IngestCommandRow() {
  return Command{"ingest", "Only ingest inputs into a workdir (run does this too)",
                 [](std::vector<Flag>& flags) -> CommandRun {
                   auto f = std::make_shared<IngestFlags>();
                   flags.push_back(PipelineFlag(&f->pipeline, /*must_exist=*/true));
                   flags.push_back({.names = "--input,-i",
                                    .help = "Input file; repeatable",
                                    .target = &f->inputs,
                                    .required = true,
                                    .existing_file = true});
                   flags.push_back(WorkdirFlag(&f->workdir));
                   flags.push_back(SetFlag(&f->sets));
                   return [f] { return Ingest(*f); };
                 }};
}

}  // namespace sluice::cli
