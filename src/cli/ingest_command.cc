// `sluice ingest PIPELINE.yaml --input FILE... (--workdir DIR | --store URL)`: only the
// ingest step of `run`, e.g. to load a store once before starting workers, or to
// measure ingest.
#include <fmt/format.h>

#include <chrono>

#include "src/cli/command.h"
#include "src/cli/log.h"
#include "src/cli/pipeline_setup.h"
#include "src/cli/workdir.h"

namespace sluice::cli {
namespace {

struct IngestFlags {
  std::string pipeline;
  std::vector<std::string> inputs;
  std::string workdir;
  std::string store;
  std::vector<std::string> sets;
};

int Ingest(const IngestFlags& flags) {
  Result<PipelineConfig> config = LoadPipeline(flags.pipeline, flags.sets);
  if (!config.ok()) {
    PrintError(config.status());
    return kExitUsage;
  }
  Result<StoreAddress> address = ResolveStoreAddress(flags.workdir, flags.store);
  if (!address.ok()) {
    PrintError(address.status());
    return kExitUsage;
  }
  Result<std::unique_ptr<Store>> store = OpenOrCreateStore(*address);
  if (!store.ok()) {
    PrintError(store.status());
    return ExitCodeFor(store.status());
  }
  if (Status status = BindPipeline(**store, *config, DescribeStore(*address));
      !status.ok()) {
    PrintError(status);
    return ExitCodeFor(status);
  }
  auto started = std::chrono::steady_clock::now();
  bool ok = IngestInputs(**store, *config, flags.inputs, /*quiet=*/false);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  Log(LogLevel::kInfo, fmt::format("ingest took {:.2f} s", seconds));
  return ok ? kExitOk : kExitFailure;
}

}  // namespace

Command IngestCommandRow() {
  return Command{"ingest", "Only ingest inputs into a store (run does this too)",
                 [](std::vector<Flag>& flags) -> CommandRun {
                   auto f = std::make_shared<IngestFlags>();
                   flags.push_back(PipelineFlag(&f->pipeline, /*must_exist=*/true));
                   flags.push_back({.names = "--input,-i",
                                    .help = "Input file; repeatable",
                                    .target = &f->inputs,
                                    .required = true,
                                    .existing_file = true});
                   flags.push_back(WorkdirFlag(
                       &f->workdir, "Directory holding the store (unless --store)",
                       /*required=*/false));
                   flags.push_back(StoreFlag(&f->store));
                   flags.push_back(SetFlag(&f->sets));
                   return [f] { return Ingest(*f); };
                 }};
}

}  // namespace sluice::cli
