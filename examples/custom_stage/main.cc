// custom_stage PIPELINE INPUT WORKDIR: runs PIPELINE on the URLs of INPUT with
// sluice's own stages and this program's `host` stage (host_stage.h), keeping the
// run's state and outputs in WORKDIR, then prints every item's result.
//
// Run it twice on the same WORKDIR: the second run finds the input ingested and
// every item done, and processes nothing (`sluice status --workdir WORKDIR` and
// `sluice export` read the same directory).
#include <sluice/pipeline.h>
#include <sluice/stage.h>
#include <sluice/status.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "host_stage.h"

namespace {

sluice::Status RunExample(const std::string& pipeline_path, const std::string& input,
                          const std::string& workdir) {
  sluice::StageRegistry registry;
  SLUICE_RETURN_IF_ERROR(sluice::RegisterAllStages(registry));
  SLUICE_RETURN_IF_ERROR(registry.Register("host",
                                           "writes the host of the item's URL to a field",
                                           custom_stage::MakeHostStage));

  // One name, one meaning: a name that is taken, built-in or not, is refused.
  const sluice::Status again =
      registry.Register("filter", "a filter of our own", custom_stage::MakeHostStage);
  if (again.ok()) return sluice::Internal("registering 'filter' a second time worked");
  std::printf("registering 'filter' again is refused: %s\n", again.ToString().c_str());

  SLUICE_ASSIGN_OR_RETURN(sluice::Pipeline pipeline,
                          sluice::Pipeline::Load(pipeline_path, registry));
  for (const std::string& warning : pipeline.warnings()) {
    std::fprintf(stderr, "%s: warning: %s\n", pipeline_path.c_str(), warning.c_str());
  }

  sluice::RunOptions options;
  options.inputs = {input};
  options.workdir = workdir;
  options.info = [](std::string_view line) {
    std::fprintf(stderr, "info: %.*s\n", static_cast<int>(line.size()), line.data());
  };
  options.warning = [](std::string_view line) {
    std::fprintf(stderr, "warning: %.*s\n", static_cast<int>(line.size()), line.data());
  };
  SLUICE_ASSIGN_OR_RETURN(sluice::RunSummary summary, pipeline.Run(options));
  std::printf(
      "pipeline %s: %llu items, %llu processed now: %llu ok, %llu failed, %llu "
      "filtered\n",
      pipeline.name().c_str(), static_cast<unsigned long long>(summary.items),
      static_cast<unsigned long long>(summary.processed),
      static_cast<unsigned long long>(summary.ok),
      static_cast<unsigned long long>(summary.failed),
      static_cast<unsigned long long>(summary.filtered));
  if (!summary.output_dir.empty())
    std::printf("outputs in %s\n", summary.output_dir.c_str());

  return pipeline.ForEachResult(workdir, [](const sluice::ExportRow& row) {
    // "ok" with the fields the stages wrote, or the reason ("filtered", ...) and why.
    std::string outcome =
        !row.has_result ? "pending"
        : row.reason == sluice::FailureReason::kNone
            ? "ok " + row.fields_json
            : std::string(sluice::FailureReasonName(row.reason)) + " " + row.error;
    std::printf("item %llu %s: %s\n", static_cast<unsigned long long>(row.id),
                row.url.c_str(), outcome.c_str());
    return sluice::Status::Ok();
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s PIPELINE INPUT WORKDIR\n", argv[0]);
    return 2;
  }
  const sluice::Status status = RunExample(argv[1], argv[2], argv[3]);
  if (!status.ok()) {
    std::fprintf(stderr, "custom_stage: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
