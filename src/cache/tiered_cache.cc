#include "src/cache/tiered_cache.h"

#include <string>
#include <utility>

namespace sluice {

std::optional<CachedResponse> TieredCache::Get(std::string_view url) {
  std::optional<CachedResponse> hit;
  if (local_ != nullptr) hit = local_->Get(url);
  if (!hit.has_value() && remote_ != nullptr) {
    hit = remote_->Get(url);
    if (hit.has_value() && local_ != nullptr) local_->Put(url, *hit);
  }
  if (!hit.has_value()) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  hit_bytes_.fetch_add(hit->body.size(), std::memory_order_relaxed);
  return hit;
}

void TieredCache::Put(std::string_view url, const CachedResponse& response) {
  stores_.fetch_add(1, std::memory_order_relaxed);
  stored_bytes_.fetch_add(response.body.size(), std::memory_order_relaxed);
  if (local_ != nullptr) local_->Put(url, response);
  if (remote_ != nullptr) remote_->Put(url, response);
}

CacheCounters TieredCache::Counters() const {
  CacheCounters tiers;
  for (const ContentCache* tier : {local_.get(), remote_.get()}) {
    if (tier == nullptr) continue;
    CacheCounters counters = tier->Counters();
    tiers.insert(tiers.end(), counters.begin(), counters.end());
  }
  std::uint64_t errors = 0;
  for (const auto& [name, value] : tiers) {
    if (name.ends_with("_errors_total")) errors += value;
  }
  CacheCounters all = {
      {"cache_hits_total", hits_.load(std::memory_order_relaxed)},
      {"cache_misses_total", misses_.load(std::memory_order_relaxed)},
      {"cache_hit_bytes_total", hit_bytes_.load(std::memory_order_relaxed)},
      {"cache_stores_total", stores_.load(std::memory_order_relaxed)},
      {"cache_stored_bytes_total", stored_bytes_.load(std::memory_order_relaxed)},
      {"cache_errors_total", errors},
  };
  all.insert(all.end(), tiers.begin(), tiers.end());
  return all;
}

}  // namespace sluice
