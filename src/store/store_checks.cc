#include "src/store/store_checks.h"

#include <fmt/format.h>

#include <algorithm>

#include "sluice/store.h"

namespace sluice {

Status CheckLeasePartition(const LeasePartition& partition) {
  if (partition.count == 0 || partition.index >= partition.count) {
    return InvalidArgument(
        fmt::format("partition {}/{}: needs 0 <= K < N (batches whose id mod N is K)",
                    partition.index, partition.count));
  }
  return Status::Ok();
}

Status CheckStageGroupNames(std::span<const std::string> groups) {
  if (groups.empty()) return InvalidArgument("no stage group given");
  for (std::size_t i = 0; i < groups.size(); ++i) {
    if (groups[i].empty()) return InvalidArgument("a stage group name is empty");
    if (std::find(groups.begin(), groups.begin() + i, groups[i]) != groups.begin() + i) {
      return InvalidArgument(fmt::format("stage group {} is given twice", groups[i]));
    }
  }
  return Status::Ok();
}

}  // namespace sluice
