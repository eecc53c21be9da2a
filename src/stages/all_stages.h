// Every stage type sluice ships, registered at once (what `sluice` itself runs).
#ifndef SLUICE_STAGES_ALL_STAGES_H_
#define SLUICE_STAGES_ALL_STAGES_H_

#include "sluice/stage.h"
#include "sluice/status.h"
#include "src/stages/exec_stage.h"

namespace sluice {

// noop, sleep, fail, filter, decode, resize, encode, faces, fetch, exec and sha256,
// with the image payload's decoder. What stages log (an exec subprocess's stderr)
// goes to `log`, or to standard error when it is empty. Fails if one of the names is
// registered already.
Status RegisterAllStages(StageRegistry& registry, StageLog log = {});

}  // namespace sluice

#endif  // SLUICE_STAGES_ALL_STAGES_H_
