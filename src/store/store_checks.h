// Checks of what callers hand the stores, shared by the backends.
#ifndef SLUICE_STORE_STORE_CHECKS_H_
#define SLUICE_STORE_STORE_CHECKS_H_

#include <span>
#include <string>

#include "sluice/status.h"

namespace sluice {

// InvalidArgument unless `groups` is a non-empty list of distinct, non-empty names.
Status CheckStageGroupNames(std::span<const std::string> groups);

}  // namespace sluice

#endif  // SLUICE_STORE_STORE_CHECKS_H_
