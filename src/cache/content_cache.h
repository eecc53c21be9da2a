// ContentCache: downloaded responses by URL, so that a URL seen again (a repeated
// item, a re-run with another detector) costs no download.
//
// The key is the URL alone, byte for byte: nothing about the pipeline or the stages
// after fetch is part of it. A cache holds only what fetch would have handed on for
// a successful download (a 2xx response that passed its checks); a cache trusts its
// entries, so whoever can write to its directory or servers decides what is served.
//
// Implementations: DiskCache (a local directory, bounded, LRU), MemcachedCache
// (memcached servers, consistent hashing) and TieredCache (disk first, then
// memcached). A cache never fails a caller: whatever goes wrong (an unreadable file,
// a dead server) is a miss, or a store not made, and is counted.
#ifndef SLUICE_CACHE_CONTENT_CACHE_H_
#define SLUICE_CACHE_CONTENT_CACHE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/record.h"

namespace sluice {

// What fetch needs to complete a record exactly as the download did.
struct CachedResponse {
  std::int64_t http_status = 200;  // of the final response
  std::string content_type;        // the final response's media type, "" if none
  std::string final_url;           // where redirects led, "" if nowhere else
  Bytes body;
  // Not stored: set by Get() to the tier that answered ("disk", "memcached").
  std::string_view tier;
};

// Named counters, as Stage::Counters() returns them.
using CacheCounters = std::vector<std::pair<std::string, std::uint64_t>>;

// Thread-safe: every method may be called concurrently from any thread. Get() and
// Put() block on disk or network I/O; callers on an event loop call them from
// helper threads (AsyncContentCache).
class ContentCache {
 public:
  virtual ~ContentCache() = default;

  // The response stored for `url`, or nullopt on a miss (including every error).
  virtual std::optional<CachedResponse> Get(std::string_view url) = 0;

  // Stores `response` for `url`, replacing what was there. May store nothing (too
  // large, a tier unreachable); a later Get() then misses.
  virtual void Put(std::string_view url, const CachedResponse& response) = 0;

  // Totals since the cache was made, named "cache_..._total".
  virtual CacheCounters Counters() const = 0;
};

}  // namespace sluice

#endif  // SLUICE_CACHE_CONTENT_CACHE_H_
