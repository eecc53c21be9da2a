#include "src/cache/async_content_cache.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "src/cache/fake_content_cache_test_util.h"

namespace sluice {
namespace {

using testing::FakeContentCache;

CachedResponse Response(std::size_t size) {
  CachedResponse response;
  response.body.assign(size, 7);
  return response;
}

std::uint64_t Counter(const CacheCounters& counters, const std::string& name) {
  for (const auto& [key, value] : counters) {
    if (key == name) return value;
  }
  return ~0ULL;
}

// The answers of lookups, as their callbacks deliver them on the cache's threads.
class Answers {
 public:
  AsyncContentCache::GetDone For(const std::string& url) {
    return [this, url](std::optional<CachedResponse> hit) {
      std::lock_guard lock(mu_);
      answers_[url] = hit.has_value();
      changed_.notify_all();
    };
  }
  // Waits for `url`'s answer: true for a hit.
  bool Wait(const std::string& url) {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return answers_.count(url) > 0; });
    return answers_[url];
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, bool> answers_;  // guarded by mu_
};

TEST(AsyncContentCacheTest, LooksUpAndStoresOnItsThreads) {
  auto fake = std::make_shared<FakeContentCache>();
  AsyncContentCache cache(fake, AsyncContentCacheOptions{.threads = 2});
  ASSERT_TRUE(cache.StartThreads().ok());
  Answers answers;
  cache.Get("http://a/1", answers.For("http://a/1"));
  EXPECT_FALSE(answers.Wait("http://a/1"));
  cache.Put("http://a/1", Response(10));
  fake->WaitFor("http://a/1");
  cache.Get("http://a/1#again", answers.For("http://a/1#again"));
  EXPECT_FALSE(answers.Wait("http://a/1#again"));  // another URL
  cache.Get("http://a/1", answers.For("http://a/1 hit"));
  EXPECT_TRUE(answers.Wait("http://a/1 hit"));
}

TEST(AsyncContentCacheTest, StoresBeyondThePendingBytesAreDropped) {
  auto fake = std::make_shared<FakeContentCache>();
  AsyncContentCache cache(
      fake, AsyncContentCacheOptions{.threads = 1, .max_pending_store_bytes = 1000});
  ASSERT_TRUE(cache.StartThreads().ok());
  fake->HoldPuts();
  cache.Put("http://a/running", Response(900));  // taken by the thread, and held
  fake->WaitForHeldPuts(1);
  cache.Put("http://a/queued", Response(600));
  cache.Put("http://a/dropped", Response(600));  // 1200 bytes would be queued
  cache.Put("http://a/fits", Response(400));
  EXPECT_EQ(Counter(cache.Counters(), "cache_store_drops_total"), 1u);
  fake->ReleasePuts();
  fake->WaitFor("http://a/fits");
  EXPECT_TRUE(fake->Has("http://a/queued"));
  EXPECT_FALSE(fake->Has("http://a/dropped"));
}

TEST(AsyncContentCacheTest, StopWaitsForTheRunningJobAndDropsLaterOnes) {
  auto fake = std::make_shared<FakeContentCache>();
  auto cache =
      std::make_unique<AsyncContentCache>(fake, AsyncContentCacheOptions{.threads = 1});
  ASSERT_TRUE(cache->StartThreads().ok());
  fake->HoldPuts();
  cache->Put("http://a/running", Response(1));
  fake->WaitForHeldPuts(1);
  std::thread release([&] { fake->ReleasePuts(); });
  cache->Stop();  // returns once the running Put has
  release.join();
  EXPECT_TRUE(fake->Has("http://a/running"));

  bool called = false;
  cache->Get("http://a/after", [&](std::optional<CachedResponse>) { called = true; });
  cache->Put("http://a/after", Response(1));
  cache.reset();
  EXPECT_FALSE(called);
  EXPECT_FALSE(fake->Has("http://a/after"));
}

}  // namespace
}  // namespace sluice
