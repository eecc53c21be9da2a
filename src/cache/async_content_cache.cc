#include "src/cache/async_content_cache.h"

#include <fmt/format.h>

#include <system_error>
#include <utility>

namespace sluice {

Status AsyncContentCache::StartThreads() {
  try {
    for (std::size_t i = 0; i < options_.threads; ++i) {
      threads_.emplace_back([this] { Run(); });
    }
  } catch (const std::system_error& error) {
    Stop();
    return Internal(
        fmt::format("content cache: cannot start a thread: {}", error.what()));
  }
  return Status::Ok();
}

AsyncContentCache::~AsyncContentCache() { Stop(); }

void AsyncContentCache::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    lookups_.clear();
  }
  wake_.notify_all();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  std::lock_guard lock(mu_);
  stores_.clear();  // none ran them: the threads never started
  pending_store_bytes_ = 0;
}

void AsyncContentCache::Get(std::string url, GetDone done) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    lookups_.push_back(Lookup{std::move(url), std::move(done)});
  }
  wake_.notify_one();
}

void AsyncContentCache::Put(std::string url, CachedResponse response) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    const std::uint64_t bytes = response.body.size();
    if (pending_store_bytes_ + bytes > options_.max_pending_store_bytes) {
      store_drops_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    pending_store_bytes_ += bytes;
    stores_.push_back(Store{std::move(url), std::move(response)});
  }
  wake_.notify_one();
}

void AsyncContentCache::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !lookups_.empty() || !stores_.empty(); });
    if (!lookups_.empty()) {
      Lookup lookup = std::move(lookups_.front());
      lookups_.pop_front();
      lock.unlock();
      lookup.done(cache_->Get(lookup.url));
    } else if (!stores_.empty()) {
      Store store = std::move(stores_.front());
      stores_.pop_front();
      pending_store_bytes_ -= store.response.body.size();
      lock.unlock();
      cache_->Put(store.url, store.response);
    } else {
      return;  // stopping, and no store left
    }
    lock.lock();
  }
}

CacheCounters AsyncContentCache::Counters() const {
  CacheCounters counters = cache_->Counters();
  counters.emplace_back("cache_store_drops_total",
                        store_drops_.load(std::memory_order_relaxed));
  return counters;
}

}  // namespace sluice
