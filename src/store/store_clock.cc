#include <chrono>

#include "sluice/store.h"

namespace sluice {
namespace {

class SystemClock final : public StoreClock {
 public:
  std::int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace

StoreClock& SystemStoreClock() {
  static SystemClock clock;
  return clock;
}

}  // namespace sluice
