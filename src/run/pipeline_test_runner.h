// Runs the tests of a PipelineTestFile (src/run/pipeline_test_file.h) without a
// store or a network: each test's records go through the real Runtime as one batch,
// over the whole pipeline or the run of stages its target names, with mocked stages
// replaced by CPU stages that set fields (or fail the records). What comes out is
// compared with what the test expects, record by record in id order.
//
// A target must cut a single stream: `from` and `to` delimit consecutive stages,
// `from` reads what comes before it (or the input), the other stages of the range
// read only stages inside it, and nothing after `to` reads inside the range but the
// node right after `to`, reading `to`. A stage that touches the network (fetch) left
// unmocked in what a test runs is refused before anything runs.
//
// Thread-safety: the functions are reentrant; each run has its own Runtime.
#ifndef SLUICE_RUN_PIPELINE_TEST_RUNNER_H_
#define SLUICE_RUN_PIPELINE_TEST_RUNNER_H_

#include <cstddef>
#include <string>
#include <vector>

#include "sluice/stage.h"
#include "sluice/status.h"
#include "src/core/pipeline_config.h"
#include "src/run/pipeline_test_file.h"

namespace sluice {

// The outcome of one test that could run.
struct PipelineTestResult {
  std::string name;
  bool passed = false;
  // When it failed: what differed, one line each, ready to print (indented).
  std::vector<std::string> diff;
};

// Runs one test of `file` on `config` (its pipeline). Errors (the test cannot run:
// an unknown stage in its target or mocks, a target that does not cut one stream, a
// network stage not mocked, the runtime failing) name the file and the YAML path.
Result<PipelineTestResult> RunPipelineTest(const PipelineTestFile& file,
                                           const PipelineTestCase& test,
                                           const PipelineConfig& config,
                                           const StageRegistry& registry);

// Loads the file's pipeline (with `registry`'s stages) and runs every test in it,
// in order. Errors: the pipeline does not load, or a test cannot run.
Result<std::vector<PipelineTestResult>> RunPipelineTestFile(
    const PipelineTestFile& file, const StageRegistry& registry);

// The stage types that touch the network, which a test must mock.
const std::vector<std::string>& NetworkStageTypes();

}  // namespace sluice

#endif  // SLUICE_RUN_PIPELINE_TEST_RUNNER_H_
