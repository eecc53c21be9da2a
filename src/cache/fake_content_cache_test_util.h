// An in-memory ContentCache for tests, with a gate that can hold its Put()s.
#ifndef SLUICE_CACHE_FAKE_CONTENT_CACHE_TEST_UTIL_H_
#define SLUICE_CACHE_FAKE_CONTENT_CACHE_TEST_UTIL_H_

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "src/cache/content_cache.h"

namespace sluice::testing {

class FakeContentCache final : public ContentCache {
 public:
  std::optional<CachedResponse> Get(std::string_view url) override {
    std::lock_guard lock(mu_);
    gets_++;
    auto found = entries_.find(std::string(url));
    if (found == entries_.end()) return std::nullopt;
    CachedResponse hit = found->second;
    hit.tier = "fake";
    return hit;
  }
  void Put(std::string_view url, const CachedResponse& response) override {
    std::unique_lock lock(mu_);
    puts_waiting_++;
    changed_.notify_all();
    changed_.wait(lock, [&] { return !hold_puts_; });
    puts_waiting_--;
    entries_[std::string(url)] = response;
    changed_.notify_all();
  }
  CacheCounters Counters() const override {
    std::lock_guard lock(mu_);
    return {{"cache_fake_errors_total", 1}, {"cache_fake_gets_total", gets_}};
  }

  // Makes Put() wait until ReleasePuts().
  void HoldPuts() {
    std::lock_guard lock(mu_);
    hold_puts_ = true;
  }
  void ReleasePuts() {
    std::lock_guard lock(mu_);
    hold_puts_ = false;
    changed_.notify_all();
  }
  // Waits until `n` Put()s are held.
  void WaitForHeldPuts(int n) {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return puts_waiting_ >= n; });
  }
  // Waits until `url` is stored.
  void WaitFor(const std::string& url) {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return entries_.count(url) > 0; });
  }
  bool Has(const std::string& url) const {
    std::lock_guard lock(mu_);
    return entries_.count(url) > 0;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, CachedResponse> entries_;  // guarded by mu_
  std::uint64_t gets_ = 0;                         // guarded by mu_
  int puts_waiting_ = 0;                           // guarded by mu_
  bool hold_puts_ = false;                         // guarded by mu_
};

}  // namespace sluice::testing

#endif  // SLUICE_CACHE_FAKE_CONTENT_CACHE_TEST_UTIL_H_
