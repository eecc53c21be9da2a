#include "src/cache/tiered_cache.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "src/cache/disk_cache.h"
#include "src/cache/fake_content_cache_test_util.h"
#include "tests/support/temp_dir.h"

namespace sluice {
namespace {

using testing::FakeContentCache;
using testing::TempDir;

CachedResponse Response(const std::string& body) {
  CachedResponse response;
  response.content_type = "image/gif";
  response.body.assign(body.begin(), body.end());
  return response;
}

std::map<std::string, std::uint64_t> AsMap(const CacheCounters& counters) {
  return std::map<std::string, std::uint64_t>(counters.begin(), counters.end());
}

class TieredCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto disk =
        DiskCache::Open(DiskCacheOptions{.dir = dir_.path(), .max_bytes = 1 << 20});
    ASSERT_TRUE(disk.ok()) << disk.status().ToString();
    disk_ = disk->get();
    auto remote = std::make_unique<FakeContentCache>();
    remote_ = remote.get();
    cache_ = std::make_unique<TieredCache>(std::move(disk).value(), std::move(remote));
  }

  TempDir dir_;
  DiskCache* disk_ = nullptr;
  FakeContentCache* remote_ = nullptr;
  std::unique_ptr<TieredCache> cache_;
};

TEST_F(TieredCacheTest, PutStoresInBothTiers) {
  cache_->Put("http://a/1", Response("one"));
  EXPECT_TRUE(disk_->Get("http://a/1").has_value());
  EXPECT_TRUE(remote_->Has("http://a/1"));
}

TEST_F(TieredCacheTest, TheDiskAnswersFirstAndARemoteHitIsKeptOnDisk) {
  cache_->Put("http://a/1", Response("one"));
  std::optional<CachedResponse> hit = cache_->Get("http://a/1");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->tier, "disk");

  // Only the remote tier holds it (another machine stored it).
  remote_->Put("http://a/2", Response("two"));
  hit = cache_->Get("http://a/2");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->tier, "fake");
  std::optional<CachedResponse> local = disk_->Get("http://a/2");
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(std::string(local->body.begin(), local->body.end()), "two");

  EXPECT_FALSE(cache_->Get("http://a/3").has_value());

  const auto counters = AsMap(cache_->Counters());
  EXPECT_EQ(counters.at("cache_hits_total"), 2u);
  EXPECT_EQ(counters.at("cache_misses_total"), 1u);
  EXPECT_EQ(counters.at("cache_hit_bytes_total"), 6u);
  EXPECT_EQ(counters.at("cache_stores_total"), 1u);
  EXPECT_EQ(counters.at("cache_stored_bytes_total"), 3u);
  EXPECT_EQ(counters.at("cache_fake_gets_total"), 2u);  // the disk answered the first
  EXPECT_EQ(counters.at("cache_errors_total"), 1u);     // the tiers' errors, summed
  EXPECT_EQ(counters.count("cache_disk_hits_total"), 1u);
}

TEST(TieredCacheOneTierTest, EitherTierMayBeAbsent) {
  TieredCache remote_only(nullptr, std::make_unique<FakeContentCache>());
  remote_only.Put("http://a/1", Response("one"));
  EXPECT_TRUE(remote_only.Get("http://a/1").has_value());

  TempDir dir;
  auto disk = DiskCache::Open(DiskCacheOptions{.dir = dir.path(), .max_bytes = 1 << 20});
  ASSERT_TRUE(disk.ok());
  TieredCache disk_only(std::move(disk).value(), nullptr);
  disk_only.Put("http://a/1", Response("one"));
  EXPECT_TRUE(disk_only.Get("http://a/1").has_value());
  EXPECT_FALSE(disk_only.Get("http://a/2").has_value());
}

}  // namespace
}  // namespace sluice
