// DiskCache: the local tier of the content cache, a directory of files bounded in
// total bytes, least recently used evicted first, kept across restarts.
//
// How it works. An entry (cache_entry.h) is the file DIR/KK/KEY, KEY the URL's
// CacheKey() and KK its first two digits (256 subdirectories, so that no directory
// grows huge). The index (key -> size, in LRU order) is in memory only: Open()
// rebuilds it from the directory, ordered by the files' modification times, which a
// hit sets to now; so the order survives a restart (to the file system's timestamp
// resolution). A Put() writes DIR/tmp/KEY.PID.N and renames it into place, so that
// a reader or a crash never sees half an entry; files are not fsynced (a cache need
// not survive a power cut: an entry that lost its bytes fails its checksum). A
// truncated, damaged or unreadable entry is a miss and is removed. Leftover
// temporary files are removed by Open().
//
// The byte bound counts entry files' sizes (body, URL, headers, ~50 bytes), not
// file system blocks. An entry larger than the bound is not stored.
//
// One process per directory: the index is the process's own. Two processes sharing
// a directory stay correct (an entry the other removed is a miss), but each bounds
// only what it knows of.
//
// Thread-safe. Reads and writes of entry files run outside the index's mutex;
// renames into place and evictions' unlinks run under it, so that the directory
// always holds what the index says, as far as this process goes.
#ifndef SLUICE_CACHE_DISK_CACHE_H_
#define SLUICE_CACHE_DISK_CACHE_H_

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sluice/status.h"
#include "src/cache/content_cache.h"

namespace sluice {

struct DiskCacheOptions {
  std::string dir;  // the cache's directory; made (with its parents) if missing
  // Total bytes of entries kept; least recently used ones are evicted beyond it.
  std::uint64_t max_bytes = 10ULL << 30;
};

// What a DiskCache counted since it was opened.
struct DiskCacheStats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t hit_bytes = 0;     // body bytes served by hits
  std::uint64_t stores = 0;        // entries written
  std::uint64_t stored_bytes = 0;  // their body bytes
  std::uint64_t evictions = 0;     // entries removed to stay under max_bytes
  std::uint64_t too_large = 0;     // Put()s of an entry over max_bytes, not stored
  std::uint64_t errors = 0;        // damaged entries removed, and failed reads and writes
  std::uint64_t bytes = 0;         // entry file bytes held now (what max_bytes bounds)
  std::uint64_t entries = 0;       // entries held now
};

class DiskCache final : public ContentCache {
 public:
  // Opens (or makes) the directory and indexes the entries in it, evicting beyond
  // max_bytes. Fails when the directory cannot be made or read.
  static Result<std::unique_ptr<DiskCache>> Open(DiskCacheOptions options);

  DiskCache(const DiskCache&) = delete;
  DiskCache& operator=(const DiskCache&) = delete;

  std::optional<CachedResponse> Get(std::string_view url) override;
  void Put(std::string_view url, const CachedResponse& response) override;
  CacheCounters Counters() const override;

  DiskCacheStats Stats() const;
  const DiskCacheOptions& options() const { return options_; }

  // The path of the entry file for `url` (whether or not it exists).
  std::string EntryPath(std::string_view url) const;

 private:
  explicit DiskCache(DiskCacheOptions options) : options_(std::move(options)) {}

  struct IndexEntry {
    std::uint64_t size = 0;
    std::list<std::string>::iterator lru;  // its place in lru_
  };

  Status Load();
  std::string PathOf(const std::string& key) const;
  // Removes `key` from the index and its file. mu_ held.
  void RemoveLocked(const std::string& key);
  // Evicts least recently used entries until the total is within max_bytes. mu_ held.
  void EvictLocked();

  const DiskCacheOptions options_;
  std::atomic<std::uint64_t> temp_serial_{0};  // names of temporary files

  mutable std::mutex mu_;
  std::unordered_map<std::string, IndexEntry> index_;  // guarded by mu_
  std::list<std::string> lru_;  // guarded by mu_: keys, least recently used first
  std::uint64_t bytes_ = 0;     // guarded by mu_: sizes in index_, summed

  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
  std::atomic<std::uint64_t> hit_bytes_{0};
  std::atomic<std::uint64_t> stores_{0};
  std::atomic<std::uint64_t> stored_bytes_{0};
  std::atomic<std::uint64_t> evictions_{0};
  std::atomic<std::uint64_t> too_large_{0};
  std::atomic<std::uint64_t> errors_{0};
};

}  // namespace sluice

#endif  // SLUICE_CACHE_DISK_CACHE_H_
