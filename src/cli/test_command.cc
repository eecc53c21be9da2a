// `sluice test FILE_test.yaml...`: runs pipeline unit tests written in YAML
// (src/run/pipeline_test_file.h, docs/operators.md "Testing a pipeline") without a
// store or a network. Prints "ok NAME" or "FAIL NAME" per test, with a diff under a
// failure, then "N tests, M failed". Exit 0 when all pass, 1 when one failed, 2 when
// a file is not a valid test file or a test cannot run (the message names the file
// and the YAML path); the other files still run.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "src/cli/command.h"
#include "src/cli/workdir.h"
#include "src/run/pipeline_test_file.h"
#include "src/run/pipeline_test_runner.h"

namespace sluice::cli {
namespace {

struct TestFlags {
  std::vector<std::string> files;
};

int RunTests(const TestFlags& flags) {
  std::size_t tests = 0;
  std::size_t failed = 0;
  bool unusable = false;
  for (const std::string& path : flags.files) {
    Result<PipelineTestFile> file = LoadPipelineTestFile(path);
    if (!file.ok()) {
      PrintError(file.ToStatus());
      unusable = true;
      continue;
    }
    Result<std::vector<PipelineTestResult>> results =
        RunPipelineTestFile(*file, DefaultRegistry());
    if (!results.ok()) {
      PrintError(results.ToStatus());
      unusable = true;
      continue;
    }
    for (const PipelineTestResult& result : *results) {
      ++tests;
      if (result.passed) {
        fmt::print("ok   {}: {}\n", path, result.name);
        continue;
      }
      ++failed;
      fmt::print("FAIL {}: {}\n", path, result.name);
      for (const std::string& line : result.diff) fmt::print("    {}\n", line);
    }
  }
  fmt::print("{} tests, {} failed\n", tests, failed);
  std::fflush(stdout);
  if (unusable) return kExitUsage;
  return failed > 0 ? kExitFailure : kExitOk;
}

}  // namespace

Command TestCommandRow() {
  return Command{"test", "Run a pipeline's unit tests (FILE_test.yaml) without a network",
                 [](std::vector<Flag>& flags) -> CommandRun {
                   auto f = std::make_shared<TestFlags>();
                   flags.push_back({.names = "files",
                                    .help = "Test files (PIPELINE_test.yaml)",
                                    .target = &f->files,
                                    .required = true,
                                    .existing_file = true});
                   return [f] { return RunTests(*f); };
                 }};
}

}  // namespace sluice::cli
