#include "tests/fuzz/fuzz_registry.h"

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "src/stages/builtin_stages.h"
#include "tests/fuzz/fuzz_check.h"

namespace sluice::fuzz {
namespace {

class ProbeStage final : public CpuStage {
 public:
  void Process(std::span<Record> records) override { (void)records; }
};

Result<std::unique_ptr<Stage>> MakeProbe(StageOptions& options) {
  options.GetInt("count", 1, 0, 1'000'000);
  options.GetDouble("ratio", 0.5, 0.0, 1.0);
  options.GetBool("enabled", true);
  options.GetString("label", "");
  options.GetChoice("mode", "fast", {"fast", "slow"});
  const std::vector<std::string> list = options.GetStringList("list", {});
  for (const std::string& entry : list) {
    if (entry.empty()) options.AddError("list", "entries must not be empty");
  }
  return std::unique_ptr<Stage>(std::make_unique<ProbeStage>());
}

}  // namespace

const StageRegistry& FuzzRegistry() {
  static const StageRegistry registry = [] {
    StageRegistry r;
    SLUICE_FUZZ_CHECK(RegisterBuiltinStages(r).ok());
    SLUICE_FUZZ_CHECK(r.Register("probe", "reads one option of each kind", MakeProbe).ok());
    return r;
  }();
  return registry;
}

void CheckParsedPipeline(const Result<PipelineConfig>& parsed, std::string_view yaml,
                         std::string_view source,
                         const std::vector<ConfigOverride>& overrides) {
  if (!parsed.ok()) {
    SLUICE_FUZZ_CHECK(parsed.status().code() == StatusCode::kInvalidArgument);
    SLUICE_FUZZ_CHECK(parsed.status().message().starts_with(source));
    return;
  }
  const PipelineConfig& config = *parsed;
  SLUICE_FUZZ_CHECK(!config.name.empty());
  SLUICE_FUZZ_CHECK(config.batch_size >= 1 && config.batch_size <= 1'000'000);
  SLUICE_FUZZ_CHECK(config.lease >= std::chrono::seconds(1) &&
                    config.lease <= std::chrono::hours(24));
  SLUICE_FUZZ_CHECK(config.grace >= std::chrono::seconds(0) &&
                    config.grace <= std::chrono::hours(24));
  SLUICE_FUZZ_CHECK(config.chunk_size >= 1 && config.chunk_size <= 65536);
  SLUICE_FUZZ_CHECK(config.cpu_threads <= 1024);
  SLUICE_FUZZ_CHECK(config.in_flight_batches <= 100000);
  SLUICE_FUZZ_CHECK(config.input.max_line_bytes >= 16 &&
                    config.input.max_line_bytes <= std::size_t{64} << 20);
  SLUICE_FUZZ_CHECK(!config.input.url_column.empty());
  SLUICE_FUZZ_CHECK(!config.output.image_field.empty());
  SLUICE_FUZZ_CHECK(config.fingerprint.size() == 16);
  SLUICE_FUZZ_CHECK(config.fingerprint.find_first_not_of("0123456789abcdef") ==
                    std::string::npos);
  SLUICE_FUZZ_CHECK(!config.stages.empty());
  std::set<std::string> names;
  for (const StageSpec& spec : config.stages) {
    SLUICE_FUZZ_CHECK(!spec.name.empty());
    SLUICE_FUZZ_CHECK(spec.name.find('.') == std::string::npos);
    SLUICE_FUZZ_CHECK(names.insert(spec.name).second);
    SLUICE_FUZZ_CHECK(FuzzRegistry().Find(spec.type) != nullptr);
  }

  // The stages are built again at run time from the options saved in the config.
  Result<std::vector<NamedStage>> stages = BuildStages(config, FuzzRegistry());
  SLUICE_FUZZ_CHECK(stages.ok());
  SLUICE_FUZZ_CHECK(stages->size() == config.stages.size());
  SLUICE_FUZZ_CHECK(InFlightBatches(config, *stages) >= 1);

  const Result<PipelineConfig> again =
      ParsePipeline(yaml, source, overrides, FuzzRegistry());
  SLUICE_FUZZ_CHECK(again.ok());
  SLUICE_FUZZ_CHECK(again->fingerprint == config.fingerprint);
}

}  // namespace sluice::fuzz
