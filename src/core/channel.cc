#include "src/core/channel.h"

namespace sluice {

std::size_t CountFailed(const std::vector<Record>& records) {
  std::size_t failed = 0;
  for (const Record& record : records) failed += record.failed() ? 1 : 0;
  return failed;
}

}  // namespace sluice
