// What the pipeline fuzzers share: the stage types pipelines are parsed against, and
// the properties every parsed pipeline must have.
//
// FuzzRegistry() holds the built-in stages (noop, sleep, fail, with their real
// factories) and `probe`, which reads one option of each kind StageOptions offers,
// so that every typed getter sees fuzzed values without linking the image and
// network stages.
#ifndef SLUICE_TESTS_FUZZ_FUZZ_REGISTRY_H_
#define SLUICE_TESTS_FUZZ_FUZZ_REGISTRY_H_

#include <string_view>
#include <vector>

#include "sluice/stage.h"
#include "src/core/pipeline_config.h"

namespace sluice::fuzz {

// Built once; thread-safe to read.
const StageRegistry& FuzzRegistry();

// Checks what ParsePipeline(yaml, source, overrides, FuzzRegistry()) returned: an
// InvalidArgument naming `source`, or a pipeline whose values are within their
// documented ranges, whose stages build again from their saved options, and which a
// second parse gives the same fingerprint. Aborts when one does not hold.
void CheckParsedPipeline(const Result<PipelineConfig>& parsed, std::string_view yaml,
                         std::string_view source,
                         const std::vector<ConfigOverride>& overrides);

}  // namespace sluice::fuzz

#endif  // SLUICE_TESTS_FUZZ_FUZZ_REGISTRY_H_
