// Every stage type sluice ships, registered at once (what `sluice` itself runs).
#ifndef SLUICE_STAGES_ALL_STAGES_H_
#define SLUICE_STAGES_ALL_STAGES_H_

#include "sluice/stage.h"
#include "sluice/status.h"

namespace sluice {

// noop, sleep, fail, filter, decode, resize, encode, faces, fetch and sha256, with the
// image payload's decoder. Fails if one of the names is registered already.
Status RegisterAllStages(StageRegistry& registry);

}  // namespace sluice

#endif  // SLUICE_STAGES_ALL_STAGES_H_
