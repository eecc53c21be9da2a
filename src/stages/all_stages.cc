// RegisterAllStages, of the public API (include/sluice/pipeline.h): every stage type
// sluice ships.
#include "sluice/pipeline.h"

#include <utility>

#include "src/stages/builtin_stages.h"
#include "src/stages/exec_stage.h"
#include "src/stages/faces_stage.h"
#include "src/stages/fetch_stage.h"
#include "src/stages/hash_stage.h"
#include "src/stages/image_stages.h"

namespace sluice {

Status RegisterAllStages(StageRegistry& registry, StageLog log) {
  SLUICE_RETURN_IF_ERROR(RegisterBuiltinStages(registry));
  SLUICE_RETURN_IF_ERROR(RegisterImageStages(registry));
  SLUICE_RETURN_IF_ERROR(RegisterFaceStages(registry));
  SLUICE_RETURN_IF_ERROR(RegisterFetchStage(registry));
  SLUICE_RETURN_IF_ERROR(RegisterExecStage(registry, std::move(log)));
  return RegisterHashStage(registry);
}

}  // namespace sluice
