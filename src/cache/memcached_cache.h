// MemcachedCache: the distributed tier of the content cache, on memcached servers.
//
// Keys are spread over the servers by consistent hashing: libmemcached's ketama
// continuum (MD5 hashes, every server given the same weight), as libketama and
// other ketama clients map keys. Adding a server to N moves about 1/(N+1) of the keys,
// all of them to the new server; removing one moves only that server's keys.
//
// A server that dies or cannot be reached costs misses, never a failure and never a
// long stall: every operation has short timeouts (connect, send, receive); after
// `failure_limit` failures in a row a server is disabled for `retry` seconds (the
// operations on its keys fail at once: misses, stores not made), and when it fails
// again after that it is taken out of the continuum (its keys go to the others,
// which miss them at first), to be tried again `retry` seconds later.
//
// memcached refuses items over its item size limit (1 MiB by default, `-I` raises
// it): entries over `max_item_bytes` are not sent, and are counted as too large.
//
// Thread-safe. libmemcached's handles are not: each operation borrows one from a
// pool of clones of a configured original, which grows to the number of threads
// that use the cache at once. Each clone keeps its own connections and its own
// account of failed servers.
#ifndef SLUICE_CACHE_MEMCACHED_CACHE_H_
#define SLUICE_CACHE_MEMCACHED_CACHE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/status.h"
#include "src/cache/content_cache.h"

struct memcached_st;

namespace sluice {

struct MemcachedCacheOptions {
  std::vector<std::string> servers;  // "host:port" each (host a name or an IPv4 address)
  std::chrono::milliseconds timeout{250};  // connect, and each send and receive
  // Entries over this size are not stored: memcached's default item limit (1 MiB,
  // for key, value and the server's item header) less room for the header.
  std::uint64_t max_item_bytes = (1 << 20) - 1024;
  int failure_limit = 2;          // failures in a row that take a server out
  std::chrono::seconds retry{5};  // how long a server stays out before a retry
  std::chrono::seconds ttl{0};    // items' expiry time; 0 = kept until evicted
};

// What a MemcachedCache counted since it was made.
struct MemcachedCacheStats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;        // errors included
  std::uint64_t hit_bytes = 0;     // body bytes served by hits
  std::uint64_t stores = 0;        // entries stored
  std::uint64_t stored_bytes = 0;  // their body bytes
  std::uint64_t too_large = 0;     // entries not stored for their size
  std::uint64_t errors = 0;  // operations that failed (a server down, a timeout, ...)
};

class MemcachedCache final : public ContentCache {
 public:
  // Fails when a server is not "host:port"; connects to none (that happens on use).
  static Result<std::unique_ptr<MemcachedCache>> Create(MemcachedCacheOptions options);
  ~MemcachedCache() override;

  MemcachedCache(const MemcachedCache&) = delete;
  MemcachedCache& operator=(const MemcachedCache&) = delete;

  std::optional<CachedResponse> Get(std::string_view url) override;
  void Put(std::string_view url, const CachedResponse& response) override;
  CacheCounters Counters() const override;

  MemcachedCacheStats Stats() const;

  // "host:port" of the server that holds `url` now (per the continuum of one of the
  // pool's handles), "" if none. For tests and diagnostics.
  std::string ServerFor(std::string_view url);

  // The memcached key of `url`.
  static std::string Key(std::string_view url);

 private:
  explicit MemcachedCache(MemcachedCacheOptions options);

  // A handle of the pool, returned to it on destruction.
  class Handle;
  Handle Borrow();
  void GiveBack(memcached_st* memc);

  const MemcachedCacheOptions options_;
  memcached_st* original_ = nullptr;  // configured, never used for operations

  std::mutex mu_;
  std::vector<memcached_st*> idle_;  // guarded by mu_

  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
  std::atomic<std::uint64_t> hit_bytes_{0};
  std::atomic<std::uint64_t> stores_{0};
  std::atomic<std::uint64_t> stored_bytes_{0};
  std::atomic<std::uint64_t> too_large_{0};
  std::atomic<std::uint64_t> errors_{0};
};

// True if `server` is "host:port" with a port in 1..65535.
bool IsMemcachedServer(std::string_view server);

}  // namespace sluice

#endif  // SLUICE_CACHE_MEMCACHED_CACHE_H_
