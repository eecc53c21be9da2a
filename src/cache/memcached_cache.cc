#include "src/cache/memcached_cache.h"

#include <fmt/format.h>
#include <libmemcached/memcached.h>

#include <charconv>
#include <cstdlib>
#include <utility>

#include "src/cache/cache_entry.h"

namespace sluice {

bool IsMemcachedServer(std::string_view server) {
  const std::size_t colon = server.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= server.size()) {
    return false;
  }
  int port = 0;
  const char* end = server.data() + server.size();
  auto [stop, error] = std::from_chars(server.data() + colon + 1, end, port);
  return error == std::errc() && stop == end && port > 0 && port < 65536;
}

class MemcachedCache::Handle {
 public:
  Handle(MemcachedCache* owner, memcached_st* memc) : owner_(owner), memc_(memc) {}
  Handle(Handle&& other) noexcept : owner_(other.owner_), memc_(other.memc_) {
    other.memc_ = nullptr;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (memc_ != nullptr) owner_->GiveBack(memc_);
  }
  memcached_st* get() const { return memc_; }  // nullptr: no handle could be made

 private:
  MemcachedCache* owner_;
  memcached_st* memc_;
};

MemcachedCache::MemcachedCache(MemcachedCacheOptions options)
    : options_(std::move(options)) {}

MemcachedCache::~MemcachedCache() {
  for (memcached_st* memc : idle_) memcached_free(memc);
  if (original_ != nullptr) memcached_free(original_);
}

Result<std::unique_ptr<MemcachedCache>> MemcachedCache::Create(
    MemcachedCacheOptions options) {
  if (options.servers.empty()) return InvalidArgument("memcached: no servers");
  std::unique_ptr<MemcachedCache> cache(new MemcachedCache(std::move(options)));
  memcached_st* memc = memcached_create(nullptr);
  if (memc == nullptr) return Internal("memcached: cannot make a handle");
  cache->original_ = memc;
  const MemcachedCacheOptions& o = cache->options_;
  const auto timeout_ms = static_cast<std::uint64_t>(o.timeout.count());
  // Ketama over MD5 hashes, unweighted (libketama's mapping).
  const std::pair<memcached_behavior_t, std::uint64_t> behaviors[] = {
      {MEMCACHED_BEHAVIOR_DISTRIBUTION, MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA},
      {MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 0},
      {MEMCACHED_BEHAVIOR_HASH, MEMCACHED_HASH_MD5},
      {MEMCACHED_BEHAVIOR_KETAMA_HASH, MEMCACHED_HASH_MD5},
      // Non-blocking sockets: without them the connect timeout does not apply.
      {MEMCACHED_BEHAVIOR_NO_BLOCK, 1},
      {MEMCACHED_BEHAVIOR_TCP_NODELAY, 1},
      {MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, timeout_ms},
      {MEMCACHED_BEHAVIOR_POLL_TIMEOUT, timeout_ms},
      {MEMCACHED_BEHAVIOR_SND_TIMEOUT, timeout_ms * 1000},  // microseconds
      {MEMCACHED_BEHAVIOR_RCV_TIMEOUT, timeout_ms * 1000},
      {MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT,
       static_cast<std::uint64_t>(o.failure_limit)},
      {MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 1},
      {MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, static_cast<std::uint64_t>(o.retry.count())},
  };
  for (const auto& [behavior, value] : behaviors) {
    const memcached_return_t rc = memcached_behavior_set(memc, behavior, value);
    if (rc != MEMCACHED_SUCCESS) {
      return Internal(fmt::format("memcached: setting behaviour {}: {}",
                                  static_cast<int>(behavior),
                                  memcached_strerror(memc, rc)));
    }
  }
  for (const std::string& server : o.servers) {
    if (!IsMemcachedServer(server)) {
      return InvalidArgument(fmt::format("memcached: '{}' is not host:port", server));
    }
    const std::size_t colon = server.rfind(':');
    const std::string host = server.substr(0, colon);
    const auto port = static_cast<in_port_t>(std::atoi(server.c_str() + colon + 1));
    const memcached_return_t rc = memcached_server_add(memc, host.c_str(), port);
    if (rc != MEMCACHED_SUCCESS) {
      return InvalidArgument(fmt::format("memcached: server '{}': {}", server,
                                         memcached_strerror(memc, rc)));
    }
  }
  return cache;
}

std::string MemcachedCache::Key(std::string_view url) {
  return "sluice:" + CacheKey(url);
}

MemcachedCache::Handle MemcachedCache::Borrow() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      memcached_st* memc = idle_.back();
      idle_.pop_back();
      return Handle(this, memc);
    }
  }
  return Handle(this, memcached_clone(nullptr, original_));
}

void MemcachedCache::GiveBack(memcached_st* memc) {
  std::lock_guard lock(mu_);
  idle_.push_back(memc);
}

std::optional<CachedResponse> MemcachedCache::Get(std::string_view url) {
  const std::string key = Key(url);
  Handle handle = Borrow();
  if (handle.get() == nullptr) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    misses_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  std::size_t length = 0;
  std::uint32_t flags = 0;
  memcached_return_t rc = MEMCACHED_SUCCESS;
  char* value = memcached_get(handle.get(), key.data(), key.size(), &length, &flags, &rc);
  std::optional<CachedResponse> hit;
  if (value != nullptr && rc == MEMCACHED_SUCCESS) {
    Result<CachedResponse> response =
        DecodeCacheEntry(url, std::string_view(value, length));
    if (response.ok()) {
      hit = std::move(response).value();
    } else if (response.status().code() == StatusCode::kCorruption) {
      errors_.fetch_add(1, std::memory_order_relaxed);
    }
  } else if (rc != MEMCACHED_NOTFOUND) {
    errors_.fetch_add(1, std::memory_order_relaxed);
  }
  std::free(value);
  if (!hit.has_value()) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  hit_bytes_.fetch_add(hit->body.size(), std::memory_order_relaxed);
  hit->tier = "memcached";
  return hit;
}

void MemcachedCache::Put(std::string_view url, const CachedResponse& response) {
  const std::string entry = EncodeCacheEntry(url, response);
  if (entry.size() > options_.max_item_bytes) {
    too_large_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::string key = Key(url);
  Handle handle = Borrow();
  if (handle.get() == nullptr) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const memcached_return_t rc =
      memcached_set(handle.get(), key.data(), key.size(), entry.data(), entry.size(),
                    static_cast<time_t>(options_.ttl.count()), 0);
  if (rc == MEMCACHED_SUCCESS) {
    stores_.fetch_add(1, std::memory_order_relaxed);
    stored_bytes_.fetch_add(response.body.size(), std::memory_order_relaxed);
  } else if (rc == MEMCACHED_E2BIG) {  // the server's limit is lower than ours
    too_large_.fetch_add(1, std::memory_order_relaxed);
  } else {
    errors_.fetch_add(1, std::memory_order_relaxed);
  }
}

std::string MemcachedCache::ServerFor(std::string_view url) {
  const std::string key = Key(url);
  Handle handle = Borrow();
  if (handle.get() == nullptr) return "";
  memcached_return_t rc = MEMCACHED_SUCCESS;
  const memcached_instance_st* server =
      memcached_server_by_key(handle.get(), key.data(), key.size(), &rc);
  if (server == nullptr || rc != MEMCACHED_SUCCESS) return "";
  return fmt::format("{}:{}", memcached_server_name(server),
                     memcached_server_port(server));
}

MemcachedCacheStats MemcachedCache::Stats() const {
  MemcachedCacheStats stats;
  stats.hits = hits_.load(std::memory_order_relaxed);
  stats.misses = misses_.load(std::memory_order_relaxed);
  stats.hit_bytes = hit_bytes_.load(std::memory_order_relaxed);
  stats.stores = stores_.load(std::memory_order_relaxed);
  stats.stored_bytes = stored_bytes_.load(std::memory_order_relaxed);
  stats.too_large = too_large_.load(std::memory_order_relaxed);
  stats.errors = errors_.load(std::memory_order_relaxed);
  return stats;
}

CacheCounters MemcachedCache::Counters() const {
  const MemcachedCacheStats stats = Stats();
  return {
      {"cache_memcached_hits_total", stats.hits},
      {"cache_memcached_misses_total", stats.misses},
      {"cache_memcached_hit_bytes_total", stats.hit_bytes},
      {"cache_memcached_stores_total", stats.stores},
      {"cache_memcached_stored_bytes_total", stats.stored_bytes},
      {"cache_memcached_too_large_total", stats.too_large},
      {"cache_memcached_errors_total", stats.errors},
  };
}

}  // namespace sluice
