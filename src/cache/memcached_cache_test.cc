// MemcachedCache against real memcached servers the tests start on loopback
// (tests/support/memcached_server.h): storing and serving across servers, how many
// keys move when a server is added, the item size limit, and dead or unreachable
// servers, which must cost misses only.
//
// No test bounds how long anything takes, but the dead-server tests wait for their
// lookups with a generous deadline, so that a hang fails the test instead of the run.
#include "src/cache/memcached_cache.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/support/memcached_server.h"

namespace sluice {
namespace {

using testing::MemcachedServer;
using testing::MemcachedServerOptions;

constexpr auto kHangDeadline = std::chrono::minutes(2);

CachedResponse Response(const std::string& body) {
  CachedResponse response;
  response.content_type = "image/jpeg";
  response.body.assign(body.begin(), body.end());
  return response;
}

std::string Url(int i) { return "http://images.example/" + std::to_string(i) + ".jpg"; }

class MemcachedCacheTest : public ::testing::Test {
 protected:
  // Starts `n` more servers.
  void StartServers(int n, MemcachedServerOptions options = {}) {
    for (int i = 0; i < n; ++i) {
      auto server = MemcachedServer::Start(options);
      ASSERT_TRUE(server.ok()) << server.status().ToString();
      servers_.push_back(std::move(server).value());
    }
  }

  // The addresses of the first `n` servers.
  std::vector<std::string> Addresses(std::size_t n) const {
    std::vector<std::string> addresses;
    for (std::size_t i = 0; i < n && i < servers_.size(); ++i) {
      addresses.push_back(servers_[i]->address());
    }
    return addresses;
  }

  static std::unique_ptr<MemcachedCache> Cache(std::vector<std::string> servers,
                                               MemcachedCacheOptions options = {}) {
    options.servers = std::move(servers);
    auto cache = MemcachedCache::Create(options);
    EXPECT_TRUE(cache.ok()) << cache.status().ToString();
    return cache.ok() ? std::move(cache).value() : nullptr;
  }

  std::vector<std::unique_ptr<MemcachedServer>> servers_;
};

TEST_F(MemcachedCacheTest, ServesWhatAnotherClientStoredAcrossServers) {
  StartServers(3);
  auto writer = Cache(Addresses(3));
  for (int i = 0; i < 300; ++i)
    writer->Put(Url(i), Response("body " + std::to_string(i)));
  EXPECT_EQ(writer->Stats().stores, 300u);
  EXPECT_EQ(writer->Stats().errors, 0u);

  auto reader = Cache(Addresses(3));  // another process would see the same
  std::set<std::string> holders;
  for (int i = 0; i < 300; ++i) {
    std::optional<CachedResponse> hit = reader->Get(Url(i));
    ASSERT_TRUE(hit.has_value()) << Url(i);
    EXPECT_EQ(std::string(hit->body.begin(), hit->body.end()),
              "body " + std::to_string(i));
    EXPECT_EQ(hit->content_type, "image/jpeg");
    EXPECT_EQ(hit->tier, "memcached");
    holders.insert(reader->ServerFor(Url(i)));
  }
  EXPECT_FALSE(reader->Get(Url(1000)).has_value());
  EXPECT_EQ(holders.size(), 3u);  // every server holds some
  const MemcachedCacheStats stats = reader->Stats();
  EXPECT_EQ(stats.hits, 300u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.errors, 0u);
}

// Consistent hashing: with N servers, adding one moves about 1/(N+1) of the keys, and
// only to the new server. Where a key lives is the ketama continuum's answer for the
// servers' addresses (whose ports differ from run to run); the moved share is the
// new server's share of the continuum, within a few per cent of 1/(N+1).
TEST_F(MemcachedCacheTest, AddingAServerMovesAboutOneInNPlusOneKeys) {
  constexpr int kServers = 4;
  constexpr int kKeys = 10'000;
  StartServers(kServers + 1);
  auto before = Cache(Addresses(kServers));
  auto after = Cache(Addresses(kServers + 1));
  const std::string added = servers_.back()->address();

  int moved = 0;
  int moved_elsewhere = 0;
  std::map<std::string, int> per_server;
  std::vector<bool> stays(kKeys);
  for (int i = 0; i < kKeys; ++i) {
    const std::string old_server = before->ServerFor(Url(i));
    const std::string new_server = after->ServerFor(Url(i));
    ASSERT_FALSE(old_server.empty());
    per_server[old_server]++;
    stays[i] = old_server == new_server;
    if (!stays[i]) {
      moved++;
      if (new_server != added) moved_elsewhere++;
    }
  }
  const double fraction = static_cast<double>(moved) / kKeys;
  EXPECT_EQ(moved_elsewhere, 0);
  EXPECT_GT(fraction, 0.6 / (kServers + 1)) << moved << " of " << kKeys << " moved";
  EXPECT_LT(fraction, 1.4 / (kServers + 1)) << moved << " of " << kKeys << " moved";
  EXPECT_EQ(per_server.size(), static_cast<std::size_t>(kServers));

  // And so on the servers themselves: what was stored with N servers is found with
  // N + 1 for exactly the keys that stayed.
  constexpr int kStored = 2000;
  int expected_hits = 0;
  for (int i = 0; i < kStored; ++i) {
    before->Put(Url(i), Response("b"));
    if (stays[i]) expected_hits++;
  }
  int hits = 0;
  for (int i = 0; i < kStored; ++i) {
    if (after->Get(Url(i)).has_value()) hits++;
  }
  EXPECT_EQ(hits, expected_hits);
  EXPECT_EQ(after->Stats().errors, 0u);
}

TEST_F(MemcachedCacheTest, EntriesOverTheItemLimitAreNotStored) {
  StartServers(1);
  auto cache = Cache(Addresses(1));
  cache->Put(Url(1), Response(std::string(2 << 20, 'x')));  // over our limit: not sent
  EXPECT_FALSE(cache->Get(Url(1)).has_value());
  EXPECT_EQ(cache->Stats().too_large, 1u);

  // A limit set above the server's (1 MiB by default): the server refuses.
  MemcachedCacheOptions options;
  options.max_item_bytes = 8 << 20;
  auto lax = Cache(Addresses(1), options);
  lax->Put(Url(2), Response(std::string(3 << 20, 'x')));
  EXPECT_FALSE(lax->Get(Url(2)).has_value());
  EXPECT_EQ(lax->Stats().too_large, 1u);
  EXPECT_EQ(lax->Stats().stores, 0u);

  // A server started with a larger limit (-I) takes what our raised limit sends.
  StartServers(1, MemcachedServerOptions{.memory_mib = 64, .max_item_size = "16m"});
  auto big = Cache({servers_.back()->address()}, options);
  big->Put(Url(3), Response(std::string(3 << 20, 'y')));
  EXPECT_TRUE(big->Get(Url(3)).has_value());
}

// Runs `fn` on another thread and waits for it with kHangDeadline: a hang fails the
// test rather than the whole run.
template <typename Fn>
auto WithinDeadline(Fn fn) {
  auto task = std::async(std::launch::async, std::move(fn));
  EXPECT_EQ(task.wait_for(kHangDeadline), std::future_status::ready) << "hung";
  return task.get();
}

TEST_F(MemcachedCacheTest, AServerThatDiesCostsOnlyMisses) {
  StartServers(2);
  auto cache = Cache(Addresses(2));
  constexpr int kKeys = 200;
  const std::string doomed = servers_[1]->address();
  std::vector<bool> on_survivor(kKeys);
  int survivors = 0;
  for (int i = 0; i < kKeys; ++i) {
    cache->Put(Url(i), Response("v"));
    on_survivor[i] = cache->ServerFor(Url(i)) != doomed;
    if (on_survivor[i]) survivors++;
  }
  ASSERT_GT(survivors, 0);
  ASSERT_LT(survivors, kKeys);
  servers_[1]->Kill();

  const int hits = WithinDeadline([&] {
    int found = 0;
    for (int i = 0; i < kKeys; ++i) {
      if (cache->Get(Url(i)).has_value()) {
        found++;
        EXPECT_TRUE(on_survivor[i]) << Url(i);
      }
    }
    return found;
  });
  EXPECT_EQ(hits, survivors);
  EXPECT_GT(cache->Stats().errors, 0u);

  // Stores go on: the survivor's keys are stored again, the dead server's are not
  // stored anywhere until libmemcached takes it out of the continuum (after
  // `retry` seconds and another failure).
  WithinDeadline([&] {
    for (int i = 0; i < kKeys; ++i) cache->Put(Url(i), Response("w"));
    return 0;
  });
  const int later = WithinDeadline([&] {
    int found = 0;
    for (int i = 0; i < kKeys; ++i) found += cache->Get(Url(i)).has_value() ? 1 : 0;
    return found;
  });
  EXPECT_GE(later, survivors);
}

TEST_F(MemcachedCacheTest, AnUnreachableServerCostsOnlyMisses) {
  auto port = MemcachedServer::FreePort();
  ASSERT_TRUE(port.ok());
  auto cache = Cache({"127.0.0.1:" + std::to_string(*port)});
  const int hits = WithinDeadline([&] {
    int found = 0;
    for (int i = 0; i < 20; ++i) {
      cache->Put(Url(i), Response("v"));
      found += cache->Get(Url(i)).has_value() ? 1 : 0;
    }
    return found;
  });
  EXPECT_EQ(hits, 0);
  EXPECT_EQ(cache->Stats().misses, 20u);
  EXPECT_GT(cache->Stats().errors, 0u);
}

TEST(MemcachedCacheCreateTest, RefusesServersThatAreNotHostAndPort) {
  for (const char* bad :
       {"localhost", ":11211", "host:", "host:0", "host:70000", "host:1x"}) {
    MemcachedCacheOptions options;
    options.servers = {bad};
    EXPECT_FALSE(MemcachedCache::Create(options).ok()) << bad;
    EXPECT_FALSE(IsMemcachedServer(bad)) << bad;
  }
  EXPECT_TRUE(IsMemcachedServer("cache-1.internal:11211"));
  EXPECT_FALSE(MemcachedCache::Create(MemcachedCacheOptions{}).ok());
}

}  // namespace
}  // namespace sluice
