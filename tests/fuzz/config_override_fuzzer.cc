// Fuzzes `--set KEY=VALUE` as the commands that take a pipeline apply it
// (LoadPipeline in src/cli/pipeline_setup.cc): each text through ParseOverride, then
// all of them onto the YAML tree of a pipeline (ParsePipeline) before it is checked.
//
// The input is the --set texts, one per line, applied to kPipeline. Checked:
//   - ParseOverride accepts exactly "KEY=VALUE" with a non-empty KEY, split at the
//     first '=';
//   - no exception escapes; a failure is an InvalidArgument naming the pipeline; a
//     pipeline that loads has the properties CheckParsedPipeline lists;
//   - a pipeline that loads with a last `batch_size=N` (N plain decimal) has N items
//     per batch.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/pipeline_config.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_registry.h"

namespace {

// Every kind of node a KEY can walk through: top-level scalars, mappings, a list of
// stages found by name or by position, a list inside a stage.
constexpr std::string_view kPipeline = R"(name: fuzz
batch_size: 100
input: {format: csv, url_column: url}
output: {layout: files, metadata: true}
stages:
  - {name: first, type: noop}
  - {name: wait, type: sleep, ms: 5}
  - {name: probe, type: probe, count: 3, list: [a, b], mode: slow}
  - type: fail
    fraction: 0.5
)";

constexpr std::size_t kMaxOverrides = 16;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<ConfigOverride> overrides;
  std::optional<std::uint32_t> batch_size;
  while (!input.empty() && overrides.size() < kMaxOverrides) {
    const std::size_t newline = input.find('\n');
    const std::string_view text = input.substr(0, newline);
    input = newline == std::string_view::npos ? std::string_view()
                                              : input.substr(newline + 1);
    const Result<ConfigOverride> parsed = ParseOverride(text);
    const std::size_t eq = text.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      SLUICE_FUZZ_CHECK(!parsed.ok());
      SLUICE_FUZZ_CHECK(parsed.status().code() == StatusCode::kInvalidArgument);
      continue;
    }
    SLUICE_FUZZ_CHECK(parsed.ok());
    SLUICE_FUZZ_CHECK(parsed->key == text.substr(0, eq));
    SLUICE_FUZZ_CHECK(parsed->value == text.substr(eq + 1));
    if (parsed->key == "batch_size") {
      const std::string& value = parsed->value;
      batch_size.reset();
      if (!value.empty() && value.size() <= 6 && value[0] >= '1' && value[0] <= '9' &&
          value.find_first_not_of("0123456789") == std::string::npos) {
        batch_size = static_cast<std::uint32_t>(std::stoul(value));
      }
    }
    overrides.push_back(*parsed);
  }

  const Result<PipelineConfig> config =
      ParsePipeline(kPipeline, "base.yaml", overrides, fuzz::FuzzRegistry());
  fuzz::CheckParsedPipeline(config, kPipeline, "base.yaml", overrides);
  if (config.ok() && batch_size.has_value()) {
    SLUICE_FUZZ_CHECK(config->batch_size == *batch_size);
  }
  return 0;
}
