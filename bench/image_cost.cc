// sluice-image-cost: the CPU time per image of a pipeline's CPU stages, in isolation.
//
//   sluice-image-cost PIPELINE.yaml CORPUS_DIR [--set KEY=VALUE...]
//
// Builds the pipeline's stages as `sluice run` would, skips the async ones (fetch),
// and runs every image file of CORPUS_DIR through the CPU stages on one thread, one
// record at a time, timing each stage with the thread's CPU clock. Prints the mean
// CPU milliseconds per image of each stage and in all, and the CPU-bound ceiling of
// this machine: cores / CPU seconds per image. bench/images_bench.sh compares the
// whole pipeline's measured rate with that ceiling.
#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "sluice/pipeline.h"
#include "src/core/pipeline_config.h"

namespace {

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sluice;
  if (argc < 3) {
    std::cerr
        << "usage: sluice-image-cost PIPELINE.yaml CORPUS_DIR [--set KEY=VALUE...]\n";
    return 2;
  }
  std::vector<ConfigOverride> overrides;
  for (int i = 3; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) != "--set") {
      std::cerr << "sluice-image-cost: unexpected argument " << argv[i] << "\n";
      return 2;
    }
    Result<ConfigOverride> parsed = ParseOverride(argv[i + 1]);
    if (!parsed.ok()) {
      std::cerr << "sluice-image-cost: " << parsed.status().ToString() << "\n";
      return 2;
    }
    overrides.push_back(*parsed);
  }
  StageRegistry registry;
  if (Status registered = RegisterAllStages(registry); !registered.ok()) {
    std::cerr << registered.ToString() << "\n";
    return 2;
  }
  Result<PipelineConfig> config = LoadPipelineFile(argv[1], overrides, registry);
  if (!config.ok()) {
    std::cerr << config.status().ToString() << "\n";
    return 2;
  }
  Result<std::vector<NamedStage>> stages = BuildStages(*config, registry);
  if (!stages.ok()) {
    std::cerr << stages.status().ToString() << "\n";
    return 2;
  }

  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(argv[2])) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::cerr << "sluice-image-cost: no file in " << argv[2] << "\n";
    return 1;
  }

  std::vector<double> cpu(stages->size(), 0.0);
  std::size_t failed = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    std::ifstream in(files[i], std::ios::binary);
    Bytes body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Record record(i, files[i].string());
    record.Set("body", std::move(body));
    for (std::size_t s = 0; s < stages->size(); ++s) {
      Stage& stage = *(*stages)[s].stage;
      if (stage.kind() != Stage::Kind::kCpu || record.failed()) continue;
      const double start = ThreadCpuSeconds();
      static_cast<CpuStage&>(stage).Process(std::span<Record>(&record, 1));
      cpu[s] += ThreadCpuSeconds() - start;
    }
    failed += record.failed() ? 1 : 0;
  }

  double total = 0;
  std::cout << fmt::format("{} images, {} failed\n", files.size(), failed);
  for (std::size_t s = 0; s < stages->size(); ++s) {
    if ((*stages)[s].stage->kind() != Stage::Kind::kCpu) continue;
    const double ms = cpu[s] * 1000 / static_cast<double>(files.size());
    total += ms;
    std::cout << fmt::format("{:<10} {:8.3f} ms CPU/image\n", (*stages)[s].name, ms);
  }
  const unsigned cores = std::max(1U, std::thread::hardware_concurrency());
  std::cout << fmt::format("{:<10} {:8.3f} ms CPU/image\n", "total", total);
  std::cout << fmt::format("ceiling    {:8.1f} images/s on {} cores\n",
                           cores * 1000.0 / total, cores);
  return 0;
}
