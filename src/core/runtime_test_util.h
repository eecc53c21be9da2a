// Stages and a sink for the runtime's tests (runtime_test.cc, runtime_graph_test.cc).
#ifndef SLUICE_CORE_RUNTIME_TEST_UTIL_H_
#define SLUICE_CORE_RUNTIME_TEST_UTIL_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "src/core/runtime.h"

namespace sluice::runtime_test {

using std::chrono::milliseconds;
inline constexpr auto kWaitLimit = std::chrono::seconds(30);

// --- stages for tests ---------------------------------------------------------------

// Marks each record it processes with a field named after itself.
class TagStage final : public CpuStage {
 public:
  explicit TagStage(std::string tag) : tag_(std::move(tag)) {}
  void ProcessOne(Record& record) override { record.Set(tag_, true); }

 private:
  const std::string tag_;
};

// Fails records whose id is a multiple of `modulus`.
class ModFailStage final : public CpuStage {
 public:
  explicit ModFailStage(ItemId modulus) : modulus_(modulus) {}
  void ProcessOne(Record& record) override {
    if (record.id() % modulus_ == 0) record.Fail(FailureReason::kInjected, "mod");
  }

 private:
  const ItemId modulus_;
};

// Remembers every record it is given through the default Process(); flags a failed
// one (it must never see one).
class WitnessStage final : public CpuStage {
 public:
  void ProcessOne(Record& record) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (record.failed()) saw_failed_ = true;
    seen_.push_back(record.id());
  }
  bool saw_failed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return saw_failed_;
  }
  std::size_t seen() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_.size();
  }

 private:
  mutable std::mutex mu_;
  bool saw_failed_ = false;   // guarded by mu_
  std::vector<ItemId> seen_;  // guarded by mu_
};

// Completes each record after a pseudo-random delay of 0..max_delay_us, so that
// records leave out of order; tags them like TagStage.
class DelayAsyncStage final : public AsyncStage {
 public:
  DelayAsyncStage(std::string tag, std::size_t max_in_flight, int max_delay_us)
      : tag_(std::move(tag)),
        max_in_flight_(max_in_flight),
        max_delay_us_(max_delay_us) {}
  std::size_t max_in_flight() const override { return max_in_flight_; }
  void Start(Record record, AsyncContext& ctx) override {
    if (record.failed()) saw_failed_ = true;
    record.Set(tag_, true);
    const auto delay = std::chrono::microseconds(
        max_delay_us_ == 0 ? 0 : static_cast<int>(record.id() * 7919 % max_delay_us_));
    // Records are copyable, as std::function requires.
    ctx.loop().AddTimer(delay,
                        [&ctx, record]() mutable { ctx.Complete(std::move(record)); });
  }
  std::chrono::milliseconds record_deadline() const override {
    return std::chrono::hours(1);
  }
  void Abandon(ItemId, AsyncContext&) override {}
  std::atomic<bool> saw_failed_{false};

 private:
  const std::string tag_;
  const std::size_t max_in_flight_;
  const int max_delay_us_;
};

// Completes records inside Start() itself.
class ImmediateAsyncStage final : public AsyncStage {
 public:
  std::size_t max_in_flight() const override { return 4; }
  void Start(Record record, AsyncContext& ctx) override {
    ctx.Complete(std::move(record));
  }
  std::chrono::milliseconds record_deadline() const override {
    return std::chrono::hours(1);
  }
  void Abandon(ItemId, AsyncContext&) override {}
};

// Holds every record until `release_at` are held at once (then completes them all),
// or forever if that never happens (until `deadline`, when it gives the record back
// if `gives_back`, else keeps it). Records the peak it held.
class HoldingAsyncStage final : public AsyncStage {
 public:
  HoldingAsyncStage(std::size_t max_in_flight, std::size_t release_at,
                    std::chrono::milliseconds deadline = std::chrono::hours(1),
                    bool gives_back = true)
      : max_in_flight_(max_in_flight),
        release_at_(release_at),
        deadline_(deadline),
        gives_back_(gives_back) {}
  std::size_t max_in_flight() const override { return max_in_flight_; }
  std::chrono::milliseconds record_deadline() const override { return deadline_; }
  void Abandon(ItemId id, AsyncContext& ctx) override {
    abandoned_++;
    if (!gives_back_) return;
    auto it = std::find_if(held_.begin(), held_.end(),
                           [id](const Record& r) { return r.id() == id; });
    if (it == held_.end()) return;
    Record record = std::move(*it);
    held_.erase(it);
    record.Fail(FailureReason::kTimeout, "held past its deadline");
    ctx.Complete(std::move(record));
  }
  // Completes whatever it still holds (the runtime discards abandoned ones).
  void ReleaseAll(AsyncContext& ctx) {
    std::vector<Record> records;
    records.swap(held_);
    for (Record& r : records) ctx.Complete(std::move(r));
  }
  void Start(Record record, AsyncContext& ctx) override {
    held_.push_back(std::move(record));
    peak_ = std::max(peak_.load(), held_.size());
    if (held_.size() == release_at_) {
      std::vector<Record> records;
      records.swap(held_);
      for (Record& r : records) ctx.Complete(std::move(r));
    }
  }
  std::atomic<std::size_t> peak_{0};
  std::atomic<std::size_t> started_{0};
  std::atomic<std::size_t> abandoned_{0};

 private:
  const std::size_t max_in_flight_;
  const std::size_t release_at_;
  const std::chrono::milliseconds deadline_;
  const bool gives_back_;
  std::vector<Record> held_;  // loop thread only
};

// --- harness -------------------------------------------------------------------------

// Collects what BatchDone reports.
class Sink {
 public:
  BatchDone Callback() {
    return [this](BatchId batch, std::vector<Record> records) {
      std::lock_guard<std::mutex> lock(mu_);
      if (runtime_ != nullptr) {
        max_in_flight_seen_ =
            std::max(max_in_flight_seen_, runtime_->batches_in_flight());
      }
      ++reports_[batch];
      batches_[batch] = std::move(records);
      cv_.notify_all();
    };
  }
  // Lets the callback look at the runtime. Call before Start().
  void Watch(const Runtime* runtime) { runtime_ = runtime; }

  bool WaitForBatches(std::size_t count) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWaitLimit, [&] { return reports_.size() >= count; });
  }
  std::map<BatchId, std::vector<Record>> batches() {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }
  std::map<BatchId, int> reports() {
    std::lock_guard<std::mutex> lock(mu_);
    return reports_;
  }
  std::size_t max_in_flight_seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_in_flight_seen_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  const Runtime* runtime_ = nullptr;
  std::map<BatchId, int> reports_;                  // guarded by mu_
  std::map<BatchId, std::vector<Record>> batches_;  // guarded by mu_
  std::size_t max_in_flight_seen_ = 0;              // guarded by mu_
};

inline std::vector<Record> MakeBatch(ItemId first, std::size_t count) {
  std::vector<Record> records;
  records.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    records.emplace_back(first + i, "http://example.com/" + std::to_string(first + i));
  }
  return records;
}

template <typename Predicate>
bool WaitUntil(Predicate predicate) {
  const auto deadline = std::chrono::steady_clock::now() + kWaitLimit;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

inline NamedStage Named(std::string name, std::unique_ptr<Stage> stage) {
  return NamedStage{std::move(name), std::move(stage)};
}

}  // namespace sluice::runtime_test

#endif  // SLUICE_CORE_RUNTIME_TEST_UTIL_H_
