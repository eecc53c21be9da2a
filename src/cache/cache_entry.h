// The bytes of one cache entry, the same on disk and in memcached, and the key a URL
// is stored under.
//
// Layout (integers little-endian):
//   "SLCE"  magic             4 bytes
//   version                   u32 (1)
//   checksum                  u64, XXH3-64 of every byte after this field
//   http_status               i64
//   url, content_type, final_url   each a u32 length then the bytes
//   body                      a u64 length then the bytes
// The URL is kept so that two URLs of one key (a hash collision) read as a miss,
// and the checksum so that a truncated or damaged entry does.
#ifndef SLUICE_CACHE_CACHE_ENTRY_H_
#define SLUICE_CACHE_CACHE_ENTRY_H_

#include <string>
#include <string_view>

#include "sluice/status.h"
#include "src/cache/content_cache.h"

namespace sluice {

// 32 lower-case hex digits of the XXH3-128 hash of `url`: a file name and a
// memcached key (memcached keys are at most 250 bytes, with no spaces).
std::string CacheKey(std::string_view url);

// The entry for `url` and `response`.
std::string EncodeCacheEntry(std::string_view url, const CachedResponse& response);

// The response in `entry`. Corruption when the bytes are not a whole, intact entry;
// NotFound when it is one, but for another URL.
Result<CachedResponse> DecodeCacheEntry(std::string_view url, std::string_view entry);

}  // namespace sluice

#endif  // SLUICE_CACHE_CACHE_ENTRY_H_
