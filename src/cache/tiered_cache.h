// TieredCache: the content cache as fetch uses it, a local tier in front of a
// distributed one. Get() asks the disk, then memcached; a memcached hit is written
// to the disk, so that the next one is local. Put() stores in both. Either tier may
// be absent.
//
// Counters: its own, over both tiers, then each tier's (DiskCache::Counters(),
// MemcachedCache::Counters()):
//   cache_hits_total          Get()s answered by a tier
//   cache_misses_total        Get()s no tier answered
//   cache_hit_bytes_total     body bytes of those answers
//   cache_stores_total        Put()s
//   cache_stored_bytes_total  body bytes handed to Put()
//   cache_errors_total        the tiers' cache_*_errors_total, summed
//
// Thread-safe, as its tiers are.
#ifndef SLUICE_CACHE_TIERED_CACHE_H_
#define SLUICE_CACHE_TIERED_CACHE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "src/cache/content_cache.h"

namespace sluice {

class TieredCache final : public ContentCache {
 public:
  // Either tier may be null (not both, for a cache that does anything).
  TieredCache(std::unique_ptr<ContentCache> local, std::unique_ptr<ContentCache> remote)
      : local_(std::move(local)), remote_(std::move(remote)) {}

  std::optional<CachedResponse> Get(std::string_view url) override;
  void Put(std::string_view url, const CachedResponse& response) override;
  CacheCounters Counters() const override;

 private:
  const std::unique_ptr<ContentCache> local_;
  const std::unique_ptr<ContentCache> remote_;

  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
  std::atomic<std::uint64_t> hit_bytes_{0};
  std::atomic<std::uint64_t> stores_{0};
  std::atomic<std::uint64_t> stored_bytes_{0};
};

}  // namespace sluice

#endif  // SLUICE_CACHE_TIERED_CACHE_H_
