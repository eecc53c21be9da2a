#include "src/cache/disk_cache.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "src/cache/cache_entry.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

constexpr char kTempDir[] = "tmp";

bool IsHex(std::string_view name, std::size_t length) {
  return name.size() == length && std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// The whole file at `path`; nullopt (errno set) when it cannot be read.
std::optional<std::string> ReadFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat info {};
  std::string bytes;
  bool ok = fstat(fd, &info) == 0;
  if (ok) bytes.resize(static_cast<std::size_t>(info.st_size));
  std::size_t done = 0;
  while (ok && done < bytes.size()) {
    const ssize_t n = read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // A file shorter than its size said (truncated as we read) is its own damage.
      bytes.resize(done);
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  const int saved = errno;
  close(fd);
  errno = saved;
  if (!ok) return std::nullopt;
  return bytes;
}

// Writes `bytes` to a new file at `path`.
bool WriteNewFile(const std::string& path, std::string_view bytes) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  const bool ok = close(fd) == 0 && done == bytes.size();
  if (!ok) unlink(path.c_str());
  return ok;
}

}  // namespace

Result<std::unique_ptr<DiskCache>> DiskCache::Open(DiskCacheOptions options) {
  if (options.dir.empty()) return InvalidArgument("disk cache: no directory");
  std::unique_ptr<DiskCache> cache(new DiskCache(std::move(options)));
  Status status = cache->Load();
  if (!status.ok()) return status.WithContext("disk cache " + cache->options_.dir);
  return cache;
}

Status DiskCache::Load() {
  std::error_code error;
  const fs::path root(options_.dir);
  fs::create_directories(root / kTempDir, error);
  if (error) return IoError("cannot make the directory: " + error.message());
  for (int i = 0; i < 256; ++i) {
    fs::create_directory(root / fmt::format("{:02x}", i), error);
    if (error) return IoError("cannot make its subdirectories: " + error.message());
  }
  // Temporary files left by writes a crash cut short.
  for (const fs::directory_entry& entry :
       fs::directory_iterator(root / kTempDir, error)) {
    fs::remove(entry.path(), error);
  }
  if (error)
    return IoError("cannot clean " + (root / kTempDir).string() + ": " + error.message());

  struct Found {
    fs::file_time_type mtime;
    std::string key;
    std::uint64_t size;
  };
  std::vector<Found> found;
  for (int i = 0; i < 256; ++i) {
    const fs::path sub = root / fmt::format("{:02x}", i);
    for (const fs::directory_entry& entry : fs::directory_iterator(sub, error)) {
      const std::string name = entry.path().filename().string();
      if (!IsHex(name, 32) || !name.starts_with(sub.filename().string())) continue;
      std::error_code size_error;
      std::error_code time_error;
      const auto size = entry.file_size(size_error);
      const auto mtime = entry.last_write_time(time_error);
      if (size_error || time_error) continue;  // gone since the listing
      found.push_back(Found{mtime, name, size});
    }
    if (error) return IoError("cannot read " + sub.string() + ": " + error.message());
  }
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
    return std::tie(a.mtime, a.key) < std::tie(b.mtime, b.key);
  });
  std::lock_guard lock(mu_);
  for (Found& entry : found) {
    lru_.push_back(entry.key);
    index_.emplace(std::move(entry.key), IndexEntry{entry.size, std::prev(lru_.end())});
    bytes_ += entry.size;
  }
  EvictLocked();
  return Status::Ok();
}

std::string DiskCache::PathOf(const std::string& key) const {
  return fmt::format("{}/{}/{}", options_.dir, key.substr(0, 2), key);
}

std::string DiskCache::EntryPath(std::string_view url) const {
  return PathOf(CacheKey(url));
}

std::optional<CachedResponse> DiskCache::Get(std::string_view url) {
  const std::string key = CacheKey(url);
  {
    std::lock_guard lock(mu_);
    auto found = index_.find(key);
    if (found == index_.end()) {
      misses_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
    lru_.splice(lru_.end(), lru_, found->second.lru);  // now the most recent
  }
  const std::string path = PathOf(key);
  std::optional<std::string> bytes = ReadFile(path);
  if (!bytes.has_value() && errno == ENOENT) {
    // Evicted by another thread between the index lookup and the read: a miss, and
    // the index already knows (a new entry of the key may even be there by now).
    misses_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  Result<CachedResponse> response =
      bytes.has_value() ? DecodeCacheEntry(url, *bytes)
                        : Result<CachedResponse>(IoError(std::strerror(errno)));
  if (!response.ok()) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    // Another URL of the same key (a hash collision) is no fault of the entry's.
    if (response.status().code() != StatusCode::kNotFound) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard lock(mu_);
      RemoveLocked(key);
    }
    return std::nullopt;
  }
  // The order of the next Open(). A failure only costs that order.
  (void)utimensat(AT_FDCWD, path.c_str(), nullptr, 0);
  hits_.fetch_add(1, std::memory_order_relaxed);
  hit_bytes_.fetch_add(response->body.size(), std::memory_order_relaxed);
  response->tier = "disk";
  return std::move(response).value();
}

void DiskCache::Put(std::string_view url, const CachedResponse& response) {
  const std::string key = CacheKey(url);
  const std::string entry = EncodeCacheEntry(url, response);
  if (entry.size() > options_.max_bytes) {
    too_large_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::string temp =
      fmt::format("{}/{}/{}.{}.{}", options_.dir, kTempDir, key, getpid(),
                  temp_serial_.fetch_add(1, std::memory_order_relaxed));
  if (!WriteNewFile(temp, entry)) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::lock_guard lock(mu_);
  if (std::rename(temp.c_str(), PathOf(key).c_str()) != 0) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    unlink(temp.c_str());
    return;
  }
  auto found = index_.find(key);
  if (found != index_.end()) {  // replaced
    bytes_ -= found->second.size;
    found->second.size = entry.size();
    lru_.splice(lru_.end(), lru_, found->second.lru);
  } else {
    lru_.push_back(key);
    index_.emplace(key, IndexEntry{entry.size(), std::prev(lru_.end())});
  }
  bytes_ += entry.size();
  stores_.fetch_add(1, std::memory_order_relaxed);
  stored_bytes_.fetch_add(response.body.size(), std::memory_order_relaxed);
  EvictLocked();
}

void DiskCache::RemoveLocked(const std::string& key) {
  auto found = index_.find(key);
  if (found == index_.end()) return;
  bytes_ -= found->second.size;
  lru_.erase(found->second.lru);
  index_.erase(found);
  unlink(PathOf(key).c_str());
}

void DiskCache::EvictLocked() {
  while (bytes_ > options_.max_bytes && !lru_.empty()) {
    const std::string key = lru_.front();
    RemoveLocked(key);
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
}

DiskCacheStats DiskCache::Stats() const {
  DiskCacheStats stats;
  stats.hits = hits_.load(std::memory_order_relaxed);
  stats.misses = misses_.load(std::memory_order_relaxed);
  stats.hit_bytes = hit_bytes_.load(std::memory_order_relaxed);
  stats.stores = stores_.load(std::memory_order_relaxed);
  stats.stored_bytes = stored_bytes_.load(std::memory_order_relaxed);
  stats.evictions = evictions_.load(std::memory_order_relaxed);
  stats.too_large = too_large_.load(std::memory_order_relaxed);
  stats.errors = errors_.load(std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  stats.bytes = bytes_;
  stats.entries = index_.size();
  return stats;
}

CacheCounters DiskCache::Counters() const {
  const DiskCacheStats stats = Stats();
  return {
      {"cache_disk_hits_total", stats.hits},
      {"cache_disk_misses_total", stats.misses},
      {"cache_disk_hit_bytes_total", stats.hit_bytes},
      {"cache_disk_stores_total", stats.stores},
      {"cache_disk_stored_bytes_total", stats.stored_bytes},
      {"cache_disk_evictions_total", stats.evictions},
      {"cache_disk_too_large_total", stats.too_large},
      {"cache_disk_errors_total", stats.errors},
      {"cache_disk_bytes", stats.bytes},
  };
}

}  // namespace sluice
