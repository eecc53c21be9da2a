// Fuzzes loading a pipeline from YAML (ParsePipeline, src/core/pipeline_config.h):
// yaml-cpp's parse, then every key read onto the options structs and each stage
// built once to check its options.
//
// The input is the pipeline file's text. Stage types are the built-in ones and a
// probe of every option kind (fuzz_registry.h). Checked: no exception escapes (they
// must come back as a Status), a failure is an InvalidArgument naming the file, and
// a pipeline that loads has the properties CheckParsedPipeline lists.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "src/core/pipeline_config.h"
#include "tests/fuzz/fuzz_registry.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  const Result<PipelineConfig> parsed =
      ParsePipeline(yaml, "fuzz.yaml", {}, fuzz::FuzzRegistry());
  fuzz::CheckParsedPipeline(parsed, yaml, "fuzz.yaml", {});
  return 0;
}
