// AsyncContentCache: a ContentCache for callers that must not block (an async
// stage's event loop): lookups and stores run on a few threads of its own.
//
// Every thread waits for a job in two FIFO queues and runs it, lookups first: an
// item waits on a lookup, while a store only has to happen eventually. Stores
// waiting at once are bounded in bytes (`max_pending_store_bytes`): a store beyond
// that is dropped (counted as cache_store_drops_total), so that a slow tier costs
// misses later rather than memory now. Lookups are bounded by the caller, who waits
// for each.
//
// Thread-safety: Get() and Put() may be called from any thread; a lookup's `done`
// runs on one of the cache's threads (post it to the caller's loop from there).
// Stop() (and the destructor) drops the lookups still queued (their `done` is never
// called), runs the stores still queued, and joins the threads.
#ifndef SLUICE_CACHE_ASYNC_CONTENT_CACHE_H_
#define SLUICE_CACHE_ASYNC_CONTENT_CACHE_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sluice/status.h"
#include "src/cache/content_cache.h"

namespace sluice {

struct AsyncContentCacheOptions {
  std::size_t threads = 4;  // threads running lookups and stores
  // Body bytes of stores queued at once; more are dropped.
  std::uint64_t max_pending_store_bytes = 256ULL << 20;
};

class AsyncContentCache {
 public:
  using GetDone = std::function<void(std::optional<CachedResponse>)>;

  AsyncContentCache(std::shared_ptr<ContentCache> cache, AsyncContentCacheOptions options)
      : cache_(std::move(cache)), options_(options) {}
  ~AsyncContentCache();

  // Starts the threads; fails when one cannot start (then none runs). Call once,
  // before Get() and Put() (jobs queued before it wait for it).
  Status StartThreads();

  AsyncContentCache(const AsyncContentCache&) = delete;
  AsyncContentCache& operator=(const AsyncContentCache&) = delete;

  // Drops the lookups still queued, runs the stores still queued, and joins the
  // threads; later jobs are dropped. Idempotent; the destructor calls it.
  void Stop();

  // Looks `url` up; `done` gets the answer, on a cache thread.
  void Get(std::string url, GetDone done);
  // Stores `response` for `url`, later (or not at all, see above).
  void Put(std::string url, CachedResponse response);

  // The cache's counters, and cache_store_drops_total. Thread-safe.
  CacheCounters Counters() const;

 private:
  struct Lookup {
    std::string url;
    GetDone done;
  };
  struct Store {
    std::string url;
    CachedResponse response;
  };

  void Run();

  const std::shared_ptr<ContentCache> cache_;
  const AsyncContentCacheOptions options_;
  std::vector<std::thread> threads_;
  std::atomic<std::uint64_t> store_drops_{0};

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Lookup> lookups_;             // guarded by mu_
  std::deque<Store> stores_;               // guarded by mu_
  std::uint64_t pending_store_bytes_ = 0;  // guarded by mu_: body bytes in stores_
  bool stopping_ = false;                  // guarded by mu_
};

}  // namespace sluice

#endif  // SLUICE_CACHE_ASYNC_CONTENT_CACHE_H_
