// The `host` stage: writes the host name of each item's URL, lower-cased, to a field
// (option `field`, default "host"); an item whose URL has no host fails with
// FailureReason::kInvalidUrl. A CpuStage: it runs on sluice's CPU pool, on chunks of
// records, and must be thread-safe (it is: it keeps nothing per record).
#ifndef CUSTOM_STAGE_HOST_STAGE_H_
#define CUSTOM_STAGE_HOST_STAGE_H_

#include <sluice/stage.h>
#include <sluice/status.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace custom_stage {

// The URL's host: between "scheme://" (and any "user@") and the port, path, query or
// fragment, lower-cased; "" when there is none.
std::string HostOf(std::string_view url);

class HostStage final : public sluice::CpuStage {
 public:
  explicit HostStage(std::string field) : field_(std::move(field)) {}

  // Declared, so that a pipeline that reads the field is checked when it loads.
  sluice::StageFields Fields() const override {
    return sluice::DeclaredFields(/*reads=*/{}, /*writes=*/{field_});
  }
  void ProcessOne(sluice::Record& record) override;

 private:
  const std::string field_;
};

// The stage's factory, as registered under a name in a StageRegistry: reads its
// options from the pipeline YAML (errors name their YAML path).
sluice::Result<std::unique_ptr<sluice::Stage>> MakeHostStage(
    sluice::StageOptions& options);

}  // namespace custom_stage

#endif  // CUSTOM_STAGE_HOST_STAGE_H_
