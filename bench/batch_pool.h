// Batches of 1,000 records that travel from a benchmark's source through the runtime
// and back (the BatchDone callback hands each one back), so that only the runtime is
// measured, not building records.
#ifndef SLUICE_BENCH_BATCH_POOL_H_
#define SLUICE_BENCH_BATCH_POOL_H_

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "sluice/record.h"

namespace sluice::bench {

inline constexpr std::size_t kBatchSize = 1000;

inline std::vector<Record> BuildBatch(ItemId first) {
  std::vector<Record> records;
  records.reserve(kBatchSize);
  for (std::size_t i = 0; i < kBatchSize; ++i) {
    records.emplace_back(first + i, "http://img.example/" + std::to_string(first + i));
  }
  return records;
}

class BatchPool {
 public:
  explicit BatchPool(std::size_t batches) {
    for (std::size_t i = 0; i < batches; ++i) free_.push_back(BuildBatch(i * kBatchSize));
  }
  std::vector<Record> Take() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !free_.empty(); });
    std::vector<Record> batch = std::move(free_.back());
    free_.pop_back();
    return batch;
  }
  void Give(std::vector<Record> batch) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(std::move(batch));
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::vector<Record>> free_;  // guarded by mu_
};

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_BATCH_POOL_H_
