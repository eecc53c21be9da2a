// DiskCache on a temporary directory: what it keeps, what it evicts, what survives a
// reopen, and that a damaged entry is a miss.
#include "src/cache/disk_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "src/cache/cache_entry.h"
#include "tests/support/temp_dir.h"

namespace sluice {
namespace {

using testing::TempDir;

CachedResponse Response(const std::string& body,
                        std::string content_type = "image/jpeg") {
  CachedResponse response;
  response.http_status = 200;
  response.content_type = std::move(content_type);
  response.body.assign(body.begin(), body.end());
  return response;
}

std::string BodyOf(const CachedResponse& response) {
  return std::string(response.body.begin(), response.body.end());
}

std::unique_ptr<DiskCache> Open(const std::string& dir, std::uint64_t max_bytes) {
  DiskCacheOptions options;
  options.dir = dir;
  options.max_bytes = max_bytes;
  auto cache = DiskCache::Open(options);
  EXPECT_TRUE(cache.ok()) << cache.status().ToString();
  return cache.ok() ? std::move(cache).value() : nullptr;
}

// The size of the entry DiskCache writes for `url` and `response`.
std::uint64_t EntrySize(const std::string& url, const CachedResponse& response) {
  return EncodeCacheEntry(url, response).size();
}

// Sets the file's modification time to `seconds_ago` before now.
void Age(const std::string& path, int seconds_ago) {
  timespec times[2];
  clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= seconds_ago;
  times[1] = times[0];
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

TEST(DiskCacheTest, StoresAndServesEveryField) {
  TempDir dir;
  auto cache = Open(dir.path(), 1 << 20);
  CachedResponse response = Response("jpeg bytes", "image/png");
  response.http_status = 203;
  response.final_url = "http://example.com/moved.png";
  EXPECT_FALSE(cache->Get("http://example.com/a.png").has_value());
  cache->Put("http://example.com/a.png", response);
  std::optional<CachedResponse> hit = cache->Get("http://example.com/a.png");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->http_status, 203);
  EXPECT_EQ(hit->content_type, "image/png");
  EXPECT_EQ(hit->final_url, "http://example.com/moved.png");
  EXPECT_EQ(BodyOf(*hit), "jpeg bytes");
  EXPECT_EQ(hit->tier, "disk");
  EXPECT_FALSE(cache->Get("http://example.com/b.png").has_value());

  const DiskCacheStats stats = cache->Stats();
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 2u);
  EXPECT_EQ(stats.hit_bytes, 10u);
  EXPECT_EQ(stats.stores, 1u);
  EXPECT_EQ(stats.entries, 1u);
  EXPECT_EQ(stats.bytes, EntrySize("http://example.com/a.png", response));
  EXPECT_EQ(stats.errors, 0u);
}

TEST(DiskCacheTest, EvictsTheLeastRecentlyUsedBeyondTheByteBound) {
  TempDir dir;
  const std::string body(1000, 'x');
  const std::uint64_t entry = EntrySize("http://h/0", Response(body));
  auto cache = Open(dir.path(), 3 * entry);  // room for three
  cache->Put("http://h/0", Response(body));
  cache->Put("http://h/1", Response(body));
  cache->Put("http://h/2", Response(body));
  ASSERT_TRUE(cache->Get("http://h/0").has_value());  // 1 is now the oldest
  cache->Put("http://h/3", Response(body));

  EXPECT_FALSE(cache->Get("http://h/1").has_value());
  EXPECT_FALSE(std::filesystem::exists(cache->EntryPath("http://h/1")));
  for (const char* kept : {"http://h/0", "http://h/2", "http://h/3"}) {
    EXPECT_TRUE(cache->Get(kept).has_value()) << kept;
  }
  const DiskCacheStats stats = cache->Stats();
  EXPECT_EQ(stats.evictions, 1u);
  EXPECT_EQ(stats.entries, 3u);
  EXPECT_LE(stats.bytes, 3 * entry);
}

TEST(DiskCacheTest, AnEntryOverTheBoundIsNotStored) {
  TempDir dir;
  auto cache = Open(dir.path(), 1000);
  cache->Put("http://h/small", Response("small"));
  cache->Put("http://h/big", Response(std::string(2000, 'x')));
  EXPECT_FALSE(cache->Get("http://h/big").has_value());
  EXPECT_TRUE(cache->Get("http://h/small").has_value());  // nothing evicted for it
  EXPECT_EQ(cache->Stats().too_large, 1u);
}

TEST(DiskCacheTest, EntriesAndTheirOrderSurviveAReopen) {
  TempDir dir;
  const std::string body(1000, 'y');
  const std::uint64_t entry = EntrySize("http://h/0", Response(body));
  {
    auto cache = Open(dir.path(), 10 * entry);
    for (int i = 0; i < 3; ++i)
      cache->Put("http://h/" + std::to_string(i), Response(body));
    // Written apart in time (as far as file times tell), 0 first...
    Age(cache->EntryPath("http://h/0"), 300);
    Age(cache->EntryPath("http://h/1"), 200);
    Age(cache->EntryPath("http://h/2"), 100);
    // ... and 0 used last: 1 is the least recently used.
    ASSERT_TRUE(cache->Get("http://h/0").has_value());
  }
  {
    auto cache = Open(dir.path(), 10 * entry);
    EXPECT_EQ(cache->Stats().entries, 3u);
    EXPECT_EQ(cache->Stats().bytes, 3 * entry);
    std::optional<CachedResponse> hit = cache->Get("http://h/2");
    ASSERT_TRUE(hit.has_value());
    EXPECT_EQ(BodyOf(*hit), body);
  }
  // Reopened with room for two: the least recently used goes.
  auto cache = Open(dir.path(), 2 * entry);
  EXPECT_EQ(cache->Stats().evictions, 1u);
  EXPECT_FALSE(cache->Get("http://h/1").has_value());
  EXPECT_TRUE(cache->Get("http://h/0").has_value());
  EXPECT_TRUE(cache->Get("http://h/2").has_value());
}

TEST(DiskCacheTest, DamagedEntriesAreMissesAndAreRemoved) {
  TempDir dir;
  auto cache = Open(dir.path(), 1 << 20);
  const std::string body(5000, 'z');
  for (const char* url : {"http://h/cut", "http://h/flipped", "http://h/empty"}) {
    cache->Put(url, Response(body));
  }
  std::filesystem::resize_file(cache->EntryPath("http://h/cut"), 2500);
  {
    std::fstream file(cache->EntryPath("http://h/flipped"),
                      std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(4000);
    file.put('!');
  }
  std::filesystem::resize_file(cache->EntryPath("http://h/empty"), 0);

  for (const char* url : {"http://h/cut", "http://h/flipped", "http://h/empty"}) {
    EXPECT_FALSE(cache->Get(url).has_value()) << url;
    EXPECT_FALSE(std::filesystem::exists(cache->EntryPath(url))) << url;
  }
  EXPECT_EQ(cache->Stats().errors, 3u);
  EXPECT_EQ(cache->Stats().entries, 0u);
  EXPECT_EQ(cache->Stats().bytes, 0u);

  // The same after a reopen: an entry damaged while the cache was closed.
  cache->Put("http://h/later", Response(body));
  cache.reset();
  std::filesystem::resize_file(Open(dir.path(), 1 << 20)->EntryPath("http://h/later"),
                               10);
  cache = Open(dir.path(), 1 << 20);
  EXPECT_FALSE(cache->Get("http://h/later").has_value());
  cache->Put("http://h/later", Response(body));  // and it can be stored again
  EXPECT_TRUE(cache->Get("http://h/later").has_value());
}

TEST(DiskCacheTest, OpenRemovesTemporaryFilesAndIgnoresStrangers) {
  TempDir dir;
  Open(dir.path(), 1 << 20);
  dir.Write("tmp/0123.1.1", "half an entry");
  dir.Write("ab/not-an-entry", "something else");
  auto cache = Open(dir.path(), 1 << 20);
  EXPECT_FALSE(std::filesystem::exists(dir.File("tmp/0123.1.1")));
  EXPECT_TRUE(std::filesystem::exists(dir.File("ab/not-an-entry")));
  EXPECT_EQ(cache->Stats().entries, 0u);
}

TEST(DiskCacheTest, ADirectoryThatCannotBeMadeIsAnError) {
  TempDir dir;
  dir.Write("file", "not a directory");
  DiskCacheOptions options;
  options.dir = dir.File("file") + "/cache";
  auto cache = DiskCache::Open(options);
  ASSERT_FALSE(cache.ok());
  EXPECT_NE(cache.status().message().find(options.dir), std::string::npos)
      << cache.status().ToString();
}

// Threads storing and reading overlapping URLs, with evictions all along: every hit
// holds its own URL's body, and the index ends as the directory is.
TEST(DiskCacheTest, ConcurrentUseKeepsEntriesWholeAndTheBoundHeld) {
  TempDir dir;
  const auto body_of = [](int i) { return std::string(500 + i * 37, 'a' + i % 26); };
  const std::uint64_t bound = 20'000;
  auto cache = Open(dir.path(), bound);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < 400; ++n) {
        const int i = (n * 7 + t * 13) % 60;
        const std::string url = "http://h/" + std::to_string(i);
        if (n % 3 == 0) {
          cache->Put(url, Response(body_of(i)));
        } else if (std::optional<CachedResponse> hit = cache->Get(url)) {
          if (BodyOf(*hit) != body_of(i)) wrong++;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  const DiskCacheStats stats = cache->Stats();
  EXPECT_GT(stats.hits, 0u);
  EXPECT_GT(stats.evictions, 0u);
  EXPECT_EQ(stats.errors, 0u);
  EXPECT_LE(stats.bytes, bound);
  std::uint64_t on_disk = 0;
  std::uint64_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path())) {
    if (entry.is_regular_file()) {
      on_disk += entry.file_size();
      files++;
    }
  }
  EXPECT_EQ(on_disk, stats.bytes);
  EXPECT_EQ(files, stats.entries);
}

}  // namespace
}  // namespace sluice
