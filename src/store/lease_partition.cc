#include <fmt/format.h>

#include "sluice/store.h"

namespace sluice {

Status CheckLeasePartition(const LeasePartition& partition) {
  if (partition.count == 0 || partition.index >= partition.count) {
    return InvalidArgument(fmt::format(
        "partition {}/{}: needs 0 <= K < N (batches whose id mod N is K)", partition.index,
        partition.count));
  }
  return Status::Ok();
}

}  // namespace sluice
