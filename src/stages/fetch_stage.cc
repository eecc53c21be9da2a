#include "src/stages/fetch_stage.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <mutex>
#include <utility>

#include "src/cache/async_content_cache.h"
#include "src/cache/disk_cache.h"
#include "src/cache/memcached_cache.h"
#include "src/cache/tiered_cache.h"
#include "src/stages/fetch_transfer.h"
#include "src/stages/fetch_worker.h"
#include "src/stages/http_headers.h"

namespace sluice {
namespace {

using LoopClock = EventLoop::Clock;
using std::chrono::milliseconds;

void GlobalInitCurl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// The failure reason of a curl result that is not our own abort.
FailureReason CurlReason(CURLcode code) {
  switch (code) {
    case CURLE_URL_MALFORMAT:
      return FailureReason::kInvalidUrl;
    case CURLE_UNSUPPORTED_PROTOCOL:
      return FailureReason::kForbidden;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return FailureReason::kDns;
    case CURLE_OPERATION_TIMEDOUT:
      return FailureReason::kTimeout;
    case CURLE_TOO_MANY_REDIRECTS:
      return FailureReason::kTooManyRedirects;
    case CURLE_FILESIZE_EXCEEDED:
      return FailureReason::kTooLarge;
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
      return FailureReason::kConnect;
    default:
      return FailureReason::kStage;
  }
}

// Transient: worth another attempt.
bool IsTransientCurl(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

std::int64_t ToMs(LoopClock::duration d) {
  return std::chrono::duration_cast<milliseconds>(d).count();
}

}  // namespace

// --- FetchStage -------------------------------------------------------------------

Result<std::shared_ptr<ContentCache>> OpenFetchCache(const FetchOptions& options) {
  std::unique_ptr<ContentCache> disk;
  std::unique_ptr<ContentCache> memcached;
  if (!options.cache_dir.empty()) {
    DiskCacheOptions disk_options;
    disk_options.dir = options.cache_dir;
    disk_options.max_bytes = static_cast<std::uint64_t>(options.cache_max_bytes);
    SLUICE_ASSIGN_OR_RETURN(disk, DiskCache::Open(std::move(disk_options)));
  }
  if (!options.memcached.empty()) {
    MemcachedCacheOptions memcached_options;
    memcached_options.servers = options.memcached;
    memcached_options.timeout = options.memcached_timeout;
    memcached_options.max_item_bytes =
        static_cast<std::uint64_t>(options.memcached_max_item_bytes);
    SLUICE_ASSIGN_OR_RETURN(memcached,
                            MemcachedCache::Create(std::move(memcached_options)));
  }
  if (disk == nullptr && memcached == nullptr) return std::shared_ptr<ContentCache>();
  return std::shared_ptr<ContentCache>(
      std::make_shared<TieredCache>(std::move(disk), std::move(memcached)));
}

FetchStage::FetchStage(FetchOptions options, std::shared_ptr<ContentCache> cache)
    : options_(std::move(options)),
      cache_(cache == nullptr ? nullptr
                              : std::make_unique<AsyncContentCache>(
                                    std::move(cache),
                                    AsyncContentCacheOptions{options_.cache_threads})),
      wakeups_(std::make_unique<WakeupCounter[]>(options_.io_threads)) {
  GlobalInitCurl();
}

std::uint64_t FetchStage::io_wakeups() const {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < options_.io_threads; ++i) {
    total += wakeups_[i].count.load(std::memory_order_relaxed);
  }
  return total;
}

FetchStage::~FetchStage() {
  // The loop no longer runs. Stop the cache's and the I/O threads first (these
  // detach the transfers still in curl), then drop every record (the runtime was
  // aborted).
  if (cache_ != nullptr) cache_->Stop();
  workers_.clear();
  for (auto& [raw, t] : transfers_) {
    if (t->retry_timer != 0 && ctx_ != nullptr) ctx_->loop().CancelTimer(t->retry_timer);
  }
  if (host_view_timer_ != 0 && ctx_ != nullptr) ctx_->loop().CancelTimer(host_view_timer_);
  transfers_.clear();
  dns_.reset();
}

bool FetchStage::StartWorkers() {
  dns_ = std::make_unique<CurlDnsShare>();
  for (std::size_t i = 0; i < options_.io_threads; ++i) {
    auto worker = FetchWorker::Start(
        options_, *dns_, [this](FetchTransfer* t, int code) { AttemptEnded(t, code); },
        &wakeups_[i].count);
    if (!worker.ok()) {
      error_ = worker.status().ToString();
      workers_.clear();
      return false;
    }
    workers_.push_back(std::move(worker).value());
  }
  worker_load_.assign(workers_.size(), 0);
  if (cache_ != nullptr) {
    Status started = cache_->StartThreads();
    if (!started.ok()) {
      error_ = started.ToString();
      workers_.clear();
      return false;
    }
  }
  return true;
}

void FetchStage::Start(Record record, AsyncContext& ctx) {
  if (ctx_ == nullptr) {
    ctx_ = &ctx;
    // Without its I/O threads the stage cannot fetch anything: that fails the
    // run, not the items (their results would say "internal" for no fault of theirs).
    if (!StartWorkers()) ctx.FailStage(Internal("fetch: " + error_));
  }
  if (workers_.empty()) {
    record.Fail(FailureReason::kInternal, "fetch: " + error_);
    ctx.Complete(std::move(record));
    return;
  }
  auto owned = std::make_unique<FetchTransfer>();
  FetchTransfer* t = owned.get();
  t->options = &options_;
  t->url = record.url();
  t->record = std::move(record);
  t->started = ctx.loop().Now();
  t->deadline = t->started + options_.item_timeout;
  transfers_.emplace(t, std::move(owned));
  by_id_[t->record.id()] = t;
  phase_counts_[static_cast<std::size_t>(FetchPhase::kNew)]++;

  // Check the URL before any connection: parseable, absolute, http(s), with a host.
  CURLU* url = curl_url();
  char* scheme = nullptr;
  char* host = nullptr;
  CURLUcode parsed = curl_url_set(url, CURLUPART_URL, t->record.url().c_str(), 0);
  if (parsed == CURLUE_OK) parsed = curl_url_get(url, CURLUPART_SCHEME, &scheme, 0);
  if (parsed != CURLUE_OK) {
    t->record.Fail(FailureReason::kInvalidUrl,
                   fmt::format("not an absolute URL: {}", curl_url_strerror(parsed)));
  } else if (!EqualsIgnoreCase(scheme, "http") && !EqualsIgnoreCase(scheme, "https")) {
    t->record.Fail(
        FailureReason::kForbidden,
        fmt::format("scheme '{}' is not fetched (only http and https)", scheme));
  } else if ((parsed = curl_url_get(url, CURLUPART_HOST, &host, 0)) != CURLUE_OK) {
    t->record.Fail(FailureReason::kInvalidUrl,
                   fmt::format("URL without a host: {}", curl_url_strerror(parsed)));
  } else {
    t->host = host;
  }
  curl_free(scheme);
  curl_free(host);
  curl_url_cleanup(url);
  if (t->record.failed()) {
    Finish(t);
    return;
  }
  if (cache_ != nullptr) {
    LookUp(t);
  } else {
    Admit(t);
  }
}

void FetchStage::LookUp(FetchTransfer* t) {
  SetPhase(t, FetchPhase::kCache);
  auto [leader, inserted] = leaders_.try_emplace(t->url, t);
  if (!inserted) {
    leader->second->followers.push_back(t);
    return;
  }
  t->cache_leader = true;
  cache_->Get(t->url, [this, t](std::optional<CachedResponse> hit) {
    LookupEnded(t, std::move(hit));
  });
}

void FetchStage::LookupEnded(FetchTransfer* t, std::optional<CachedResponse> hit) {
  bool post = false;
  {
    std::lock_guard<std::mutex> lock(looked_up_mu_);
    post = looked_up_.empty();  // else a HandleEndedLookups() is already queued
    looked_up_.emplace_back(t, std::move(hit));
  }
  if (post) ctx_->loop().Post([this] { HandleEndedLookups(); });
}

void FetchStage::HandleEndedLookups() {
  std::vector<std::pair<FetchTransfer*, std::optional<CachedResponse>>> ended;
  {
    std::lock_guard<std::mutex> lock(looked_up_mu_);
    ended.swap(looked_up_);
  }
  for (auto& [t, hit] : ended) LookupDone(t, std::move(hit));
}

void FetchStage::LookupDone(FetchTransfer* t, std::optional<CachedResponse> hit) {
  if (t->abandoned) {  // its record was given back at its deadline
    abandoned_in_lookup_--;
    FetchTransfer* next = PromoteFollower(t);
    Forget(t);
    if (next != nullptr) LookupDone(next, std::move(hit));
    return;
  }
  if (!hit.has_value()) {
    Admit(t);
    return;
  }
  Record& record = t->record;
  record.Set("http_status", hit->http_status);
  record.Set("content_type", std::move(hit->content_type));
  record.Set("bytes", static_cast<std::int64_t>(hit->body.size()));
  record.Set("download_ms", ToMs(ctx_->loop().Now() - t->started));
  record.Set("attempts", std::int64_t{0});
  if (!hit->final_url.empty()) record.Set("final_url", std::move(hit->final_url));
  record.Set("cache", std::string(hit->tier));
  record.Set("body", std::move(hit->body));
  Finish(t);
}

FetchTransfer* FetchStage::PromoteFollower(FetchTransfer* t) {
  if (!t->cache_leader) return nullptr;
  t->cache_leader = false;
  if (t->followers.empty()) {
    leaders_.erase(t->url);
    return nullptr;
  }
  FetchTransfer* next = t->followers.front();
  next->cache_leader = true;
  next->followers.assign(t->followers.begin() + 1, t->followers.end());
  t->followers.clear();
  leaders_[t->url] = next;
  return next;
}

void FetchStage::FinishFollowers(FetchTransfer* t, const Record& done) {
  leaders_.erase(t->url);
  t->cache_leader = false;
  std::vector<FetchTransfer*> followers;
  followers.swap(t->followers);
  static constexpr const char* kShared[] = {"http_status", "content_type", "bytes",
                                            "final_url", "body"};
  for (FetchTransfer* f : followers) {
    Record& record = f->record;
    if (done.failed()) {
      record.Fail(done.reason(), done.error());
    } else {
      for (const char* name : kShared) {
        if (const Value* value = done.Find(name)) record.Set(name, *value);
      }
      record.Set("download_ms", ToMs(ctx_->loop().Now() - f->started));
      record.Set("attempts", std::int64_t{0});
      record.Set("cache", std::string("duplicate"));
      duplicate_hits_.fetch_add(1, std::memory_order_relaxed);
    }
    Finish(f);
  }
}

void FetchStage::Admit(FetchTransfer* t) {
  HostQueue& queue = hosts_[t->host];
  if (queue.active >= options_.max_host_connections) {
    queue.waiting.push_back(t);
    SetPhase(t, FetchPhase::kQueued);
    UpdateHostView(false);
    return;
  }
  queue.active++;
  t->holds_host_slot = true;
  UpdateHostView(false);
  Launch(t);
}

void FetchStage::UpdateHostView(bool now) {
  const LoopClock::time_point at = ctx_->loop().Now();
  if (hosts_.empty() && host_view_timer_ != 0) {
    ctx_->loop().CancelTimer(host_view_timer_);
    host_view_timer_ = 0;
  } else if (!hosts_.empty() && host_view_timer_ == 0) {
    host_view_timer_ = ctx_->loop().AddTimer(std::chrono::seconds(1), [this] {
      host_view_timer_ = 0;
      UpdateHostView(true);
    });
  }
  if (!now && !hosts_.empty() && at - host_view_at_ < std::chrono::seconds(1)) return;
  host_view_at_ = at;
  HostView view;
  std::vector<std::tuple<std::string, std::size_t, std::size_t>> busiest;
  for (const auto& [host, queue] : hosts_) {
    view.hosts_active += queue.active > 0 ? 1 : 0;
    view.hosts_waiting += queue.waiting.empty() ? 0 : 1;
    const std::size_t load = queue.active + queue.waiting.size();
    if (busiest.size() == kBusiestHosts &&
        load <= std::get<1>(busiest.back()) + std::get<2>(busiest.back())) {
      continue;
    }
    busiest.emplace_back(host, queue.active, queue.waiting.size());
    std::sort(busiest.begin(), busiest.end(), [](const auto& a, const auto& b) {
      return std::get<1>(a) + std::get<2>(a) > std::get<1>(b) + std::get<2>(b);
    });
    if (busiest.size() > kBusiestHosts) busiest.pop_back();
  }
  view.busiest = std::move(busiest);
  std::lock_guard lock(host_view_mu_);
  host_view_ = std::move(view);
}

void FetchStage::ReleaseHost(FetchTransfer* t) {
  if (!t->holds_host_slot) return;
  t->holds_host_slot = false;
  const std::string host = t->host;  // `t` may be freed below
  auto it = hosts_.find(host);
  if (it == hosts_.end()) return;
  it->second.active--;
  // Hand the slot on. Waiters whose time ran out fail here, in a loop rather than
  // by recursion, however many of them there are.
  const LoopClock::time_point now = ctx_->loop().Now();
  while (it != hosts_.end() && !it->second.waiting.empty() &&
         it->second.active < options_.max_host_connections) {
    FetchTransfer* next = it->second.waiting.front();
    it->second.waiting.pop_front();
    if (next->deadline <= now) {
      next->record.Fail(FailureReason::kTimeout,
                        fmt::format("item time budget of {} ms spent waiting for a "
                                    "connection to {}",
                                    options_.item_timeout.count(), host));
      Finish(next);  // holds no slot: does not come back here
    } else {
      it->second.active++;
      next->holds_host_slot = true;
      Launch(next);
    }
    it = hosts_.find(host);
  }
  if (it != hosts_.end() && it->second.active == 0 && it->second.waiting.empty()) {
    hosts_.erase(it);
  }
  UpdateHostView(false);
}

void FetchStage::Launch(FetchTransfer* t) {
  const LoopClock::time_point now = ctx_->loop().Now();
  const LoopClock::duration left = t->deadline - now;
  if (left <= milliseconds(0)) {
    t->record.Fail(FailureReason::kTimeout,
                   fmt::format("item time budget of {} ms spent before attempt {}",
                               options_.item_timeout.count(), t->attempts + 1));
    Finish(t);
    return;
  }
  t->attempts++;
  t->attempt_timeout_ms = static_cast<long>(
      std::max<std::int64_t>(1, std::min(ToMs(left), options_.timeout.count())));
  const auto least = std::min_element(worker_load_.begin(), worker_load_.end());
  t->worker = static_cast<std::size_t>(least - worker_load_.begin());
  ++*least;
  SetPhase(t, FetchPhase::kAttempt);
  workers_[t->worker]->Launch(t);  // `t` is the worker's until it reports back
}

void FetchStage::AttemptEnded(FetchTransfer* t, int curl_code) {
  bool post = false;
  {
    std::lock_guard<std::mutex> lock(ended_mu_);
    post = ended_.empty();  // else a HandleEndedAttempts() is already queued
    ended_.emplace_back(t, curl_code);
  }
  if (post) ctx_->loop().Post([this] { HandleEndedAttempts(); });
}

void FetchStage::HandleEndedAttempts() {
  std::vector<std::pair<FetchTransfer*, int>> ended;
  {
    std::lock_guard<std::mutex> lock(ended_mu_);
    ended.swap(ended_);
  }
  for (const auto& [t, code] : ended) {
    --worker_load_[t->worker];
    AttemptDone(t, code);
  }
}

void FetchStage::AttemptDone(FetchTransfer* t, int curl_code) {
  if (t->abandoned) {  // its record was given back at its deadline
    abandoned_in_attempt_--;
    Forget(t);
    return;
  }
  const auto code = static_cast<CURLcode>(curl_code);
  const long status = t->status;
  CountAttempt(*t, code != CURLE_OK && t->abort_reason == FailureReason::kNone);

  FailureReason reason = FailureReason::kNone;
  std::string message;
  bool transient = false;
  if (t->abort_reason != FailureReason::kNone) {
    reason = t->abort_reason;
    message = t->abort_message;
    transient = t->abort_transient;
  } else if (code == CURLE_COULDNT_CONNECT && !t->forbidden_message.empty()) {
    reason = FailureReason::kForbidden;
    message = t->forbidden_message;
  } else if (code != CURLE_OK) {
    reason = CurlReason(code);
    transient = IsTransientCurl(code);
    message = fmt::format("{}{}{}", curl_easy_strerror(code),
                          t->error[0] != '\0' ? ": " : "", t->error.data());
  } else if (status < 200 || status > 299) {
    // Without a Location to follow, a redirect is the final answer.
    reason = IsRedirectStatus(status) ? FailureReason::kTooManyRedirects
                                      : StatusReason(status);
    message = fmt::format("HTTP {} without a usable Location", status);
  }

  if (reason == FailureReason::kNone) {
    Record& record = t->record;
    record.Set("http_status", static_cast<std::int64_t>(status));
    record.Set("content_type", t->content_type);
    record.Set("bytes", static_cast<std::int64_t>(t->body.size()));
    attempt_counters_.bytes.fetch_add(t->body.size(), std::memory_order_relaxed);
    record.Set("download_ms", ToMs(ctx_->loop().Now() - t->started));
    record.Set("attempts", static_cast<std::int64_t>(t->attempts));
    const bool redirected = !t->effective_url.empty() && record.url() != t->effective_url;
    if (cache_ != nullptr) {
      CachedResponse response;
      response.http_status = status;
      response.content_type = t->content_type;
      if (redirected) response.final_url = t->effective_url;
      response.body = t->body;
      cache_->Put(t->url, std::move(response));
    }
    if (redirected) record.Set("final_url", std::move(t->effective_url));
    record.Set("body", std::move(t->body));
    Finish(t);
    return;
  }
  // A retry, if allowed and it fits the caps; else the last attempt's reason stands.
  if (transient && t->attempts <= options_.retries) {
    const std::int64_t base = options_.retry_base.count();
    const std::int64_t backoff =
        std::min(options_.retry_max.count(), base << std::min(t->attempts - 1, 20));
    std::uniform_int_distribution<std::int64_t> jitter(
        backoff / 2, std::max<std::int64_t>(backoff, 0));
    milliseconds wait(jitter(jitter_));
    if (t->retry_after.has_value() && *t->retry_after > wait) wait = *t->retry_after;
    const LoopClock::time_point now = ctx_->loop().Now();
    if (wait > options_.retry_max) {
      message += fmt::format(" (retry wait of {} ms is over retry_max_ms {})",
                             wait.count(), options_.retry_max.count());
    } else if (now + wait >= t->deadline) {
      message += fmt::format(" (a retry in {} ms would end past item_timeout_ms {})",
                             wait.count(), options_.item_timeout.count());
    } else {
      // Give the host slot to others while waiting.
      ReleaseHost(t);
      SetPhase(t, FetchPhase::kRetryWait);
      t->retry_timer = ctx_->loop().AddTimer(wait, [this, t] {
        t->retry_timer = 0;
        Admit(t);
      });
      return;
    }
  }
  if (t->attempts > 1) message += fmt::format(" (after {} attempts)", t->attempts);
  t->record.Fail(reason, message);
  Finish(t);
}

void FetchStage::Finish(FetchTransfer* t) {
  Record record = std::move(t->record);
  by_id_.erase(record.id());
  phase_counts_[static_cast<std::size_t>(t->phase)]--;
  if (t->cache_leader) FinishFollowers(t, record);
  ReleaseHost(t);  // may launch the host's next transfer
  transfers_.erase(t);
  ctx_->Complete(std::move(record));
}

void FetchStage::Forget(FetchTransfer* t) {
  ReleaseHost(t);  // may launch the host's next transfer
  transfers_.erase(t);
}

void FetchStage::SetPhase(FetchTransfer* t, FetchPhase phase) {
  phase_counts_[static_cast<std::size_t>(t->phase)]--;
  phase_counts_[static_cast<std::size_t>(phase)]++;
  t->phase = phase;
}

void FetchStage::Abandon(ItemId id, AsyncContext& ctx) {
  auto found = by_id_.find(id);
  if (found == by_id_.end()) return;
  FetchTransfer* t = found->second;
  by_id_.erase(found);
  Record record = std::move(t->record);
  // A leader past its lookup hands the download on to the next record of its URL
  // (a leader in a lookup does so when the lookup ends).
  FetchTransfer* next = nullptr;
  if (t->cache_leader && t->phase != FetchPhase::kCache) next = PromoteFollower(t);
  std::string where;
  phase_counts_[static_cast<std::size_t>(t->phase)]--;
  switch (t->phase) {
    case FetchPhase::kNew:
    case FetchPhase::kQueued: {
      where = fmt::format("waiting for a connection to {}", t->host);
      auto host = hosts_.find(t->host);
      if (host != hosts_.end()) {
        std::erase(host->second.waiting, t);
        if (host->second.active == 0 && host->second.waiting.empty()) hosts_.erase(host);
        UpdateHostView(false);
      }
      Forget(t);  // holds no slot
      break;
    }
    case FetchPhase::kRetryWait:
      where = fmt::format("waiting to retry after attempt {}", t->attempts);
      if (t->retry_timer != 0) ctx.loop().CancelTimer(t->retry_timer);
      t->retry_timer = 0;
      Forget(t);
      break;
    case FetchPhase::kAttempt:
      // The I/O thread owns the transfer until the attempt ends (curl's own timeout
      // ends it); AttemptDone() then frees it.
      where = fmt::format("in attempt {}", t->attempts);
      t->abandoned = true;
      abandoned_in_attempt_++;
      break;
    case FetchPhase::kCache:
      if (t->cache_leader) {
        // A cache thread holds the lookup until it ends; LookupDone() then frees
        // the transfer and hands the answer to the next of its URL.
        where = "in a cache lookup";
        t->abandoned = true;
        abandoned_in_lookup_++;
      } else {
        where = "waiting for another item's download of the same URL";
        auto leader = leaders_.find(t->url);
        if (leader != leaders_.end()) std::erase(leader->second->followers, t);
        Forget(t);
      }
      break;
  }
  record.Fail(FailureReason::kTimeout,
              fmt::format("fetch: the item's deadline of {} ms passed ({})",
                          record_deadline().count(), where));
  ctx.Complete(std::move(record));
  if (next != nullptr) Admit(next);
}

std::string FetchStage::InFlightSummary() const {
  auto count = [&](FetchPhase phase) {
    return phase_counts_[static_cast<std::size_t>(phase)].load();
  };
  std::string summary = fmt::format(
      "transfers: {} in an attempt, {} waiting for a host slot, {} waiting to retry, "
      "{} past their deadline still in curl",
      count(FetchPhase::kAttempt), count(FetchPhase::kQueued) + count(FetchPhase::kNew),
      count(FetchPhase::kRetryWait), abandoned_in_attempt_.load());
  if (cache_ != nullptr) {
    summary += fmt::format(
        "; {} in a cache lookup or waiting for a download of the same URL, {} past "
        "their deadline still in a lookup",
        count(FetchPhase::kCache), abandoned_in_lookup_.load());
  }
  return summary;
}

void FetchStage::CountAttempt(const FetchTransfer& t, bool transport_error) {
  AttemptCounters& c = attempt_counters_;
  constexpr auto kRelaxed = std::memory_order_relaxed;
  c.attempts.fetch_add(1, kRelaxed);
  if (t.attempts > 1) c.retries.fetch_add(1, kRelaxed);
  const long status_class = t.status / 100;
  const std::size_t slot =
      transport_error || status_class < 1 || status_class > 5 ? 0
                                                             : static_cast<std::size_t>(status_class);
  c.responses[slot].fetch_add(1, kRelaxed);
  c.redirects.fetch_add(static_cast<std::uint64_t>(std::max(0L, t.redirects)), kRelaxed);
  const std::array<std::int64_t, 4> phases = {t.dns_us, t.connect_us, t.tls_us,
                                              t.first_byte_us};
  for (std::size_t i = 0; i < phases.size(); ++i) {
    if (phases[i] <= 0) continue;
    c.phase_us[i].fetch_add(static_cast<std::uint64_t>(phases[i]), kRelaxed);
    c.phase_count[i].fetch_add(1, kRelaxed);
  }
}

std::vector<std::pair<std::string, std::uint64_t>> FetchStage::Counters() const {
  const AttemptCounters& c = attempt_counters_;
  constexpr auto kRelaxed = std::memory_order_relaxed;
  CacheCounters counters = {{"fetch_attempts_total", c.attempts.load(kRelaxed)},
                            {"fetch_retries_total", c.retries.load(kRelaxed)},
                            {"fetch_redirects_total", c.redirects.load(kRelaxed)},
                            {"fetch_bytes_total", c.bytes.load(kRelaxed)}};
  static constexpr std::array<const char*, 6> kClasses = {"none", "1xx", "2xx",
                                                          "3xx",  "4xx", "5xx"};
  for (std::size_t i = 0; i < kClasses.size(); ++i) {
    counters.emplace_back(fmt::format("fetch_responses_total{{class={}}}", kClasses[i]),
                          c.responses[i].load(kRelaxed));
  }
  static constexpr std::array<const char*, 4> kPhases = {"dns", "connect", "tls",
                                                         "first_byte"};
  for (std::size_t i = 0; i < kPhases.size(); ++i) {
    counters.emplace_back(fmt::format("fetch_{}_us_total", kPhases[i]),
                          c.phase_us[i].load(kRelaxed));
    counters.emplace_back(fmt::format("fetch_{}_count_total", kPhases[i]),
                          c.phase_count[i].load(kRelaxed));
  }
  static constexpr std::array<std::pair<FetchPhase, const char*>, 4> kTransferPhases = {
      {{FetchPhase::kAttempt, "attempt"},
       {FetchPhase::kQueued, "queued"},
       {FetchPhase::kRetryWait, "retry_wait"},
       {FetchPhase::kCache, "cache"}}};
  for (const auto& [phase, name] : kTransferPhases) {
    counters.emplace_back(fmt::format("fetch_transfers{{phase={}}}", name),
                          phase_counts_[static_cast<std::size_t>(phase)].load(kRelaxed));
  }
  {
    std::lock_guard lock(host_view_mu_);
    counters.emplace_back("fetch_hosts_active", host_view_.hosts_active);
    counters.emplace_back("fetch_hosts_waiting", host_view_.hosts_waiting);
    for (const auto& [host, active, waiting] : host_view_.busiest) {
      counters.emplace_back(fmt::format("fetch_host_active{{host={}}}", host), active);
      counters.emplace_back(fmt::format("fetch_host_waiting{{host={}}}", host), waiting);
    }
  }
  if (cache_ == nullptr) return counters;
  for (auto& counter : cache_->Counters()) counters.push_back(std::move(counter));
  counters.emplace_back("cache_duplicate_hits_total",
                        duplicate_hits_.load(std::memory_order_relaxed));
  return counters;
}

// --- registration -------------------------------------------------------------------

namespace {

// "host:port:address[,address...]", as curl's --resolve takes it.
bool IsResolvePin(std::string_view pin) {
  const std::size_t first = pin.find(':');
  if (first == std::string_view::npos || first == 0) return false;
  const std::size_t second = pin.find(':', first + 1);
  if (second == std::string_view::npos || second == first + 1 ||
      second + 1 >= pin.size()) {
    return false;
  }
  int port = 0;
  auto [end, error] = std::from_chars(pin.data() + first + 1, pin.data() + second, port);
  return error == std::errc() && end == pin.data() + second && port > 0 && port < 65536;
}

milliseconds GetMs(StageOptions& options, std::string_view key,
                   milliseconds default_value, std::int64_t min) {
  return milliseconds(options.GetInt(key, default_value.count(), min, 86'400'000));
}

Result<std::unique_ptr<Stage>> MakeFetch(StageOptions& options) {
  FetchOptions fetch;
  fetch.max_in_flight = static_cast<std::size_t>(options.GetInt(
      "max_in_flight", static_cast<std::int64_t>(fetch.max_in_flight), 1, 1'000'000));
  fetch.max_host_connections = static_cast<std::size_t>(
      options.GetInt("max_host_connections",
                     static_cast<std::int64_t>(fetch.max_host_connections), 1, 100'000));
  fetch.connect_timeout = GetMs(options, "connect_timeout_ms", fetch.connect_timeout, 1);
  fetch.timeout = GetMs(options, "timeout_ms", fetch.timeout, 1);
  fetch.item_timeout = GetMs(options, "item_timeout_ms", fetch.item_timeout, 1);
  fetch.low_speed_bytes =
      options.GetInt("low_speed_bytes", fetch.low_speed_bytes, 1, 1LL << 32);
  fetch.low_speed_seconds =
      options.GetInt("low_speed_seconds", fetch.low_speed_seconds, 0, 86'400);
  fetch.retries = static_cast<int>(options.GetInt("retries", fetch.retries, 0, 100));
  fetch.retry_base = GetMs(options, "retry_base_ms", fetch.retry_base, 0);
  fetch.retry_max = GetMs(options, "retry_max_ms", fetch.retry_max, 0);
  fetch.max_redirects =
      static_cast<int>(options.GetInt("max_redirects", fetch.max_redirects, 0, 100));
  fetch.max_bytes = options.GetInt("max_bytes", fetch.max_bytes, 1, 1LL << 36);
  fetch.content_types = options.GetStringList("content_types", fetch.content_types);
  fetch.user_agent = options.GetString("user_agent", fetch.user_agent);
  if (fetch.user_agent.empty()) options.AddError("user_agent", "must not be empty");
  fetch.robots_name = options.GetString("robots_name", fetch.robots_name);
  fetch.robots_directives =
      options.GetStringList("robots_directives", fetch.robots_directives);
  fetch.http2 = options.GetBool("http2", fetch.http2);
  fetch.verify_tls = options.GetBool("verify_tls", fetch.verify_tls);
  fetch.dns_cache = std::chrono::seconds(
      options.GetInt("dns_cache_seconds", fetch.dns_cache.count(), 0, 86'400));
  fetch.proxy = options.GetString("proxy", "");
  fetch.resolve = options.GetStringList("resolve", {});
  for (const std::string& pin : fetch.resolve) {
    if (!IsResolvePin(pin)) {
      options.AddError("resolve", fmt::format("'{}' is not host:port:address", pin));
    }
  }
  if (fetch.retry_base > fetch.retry_max) {
    options.AddError("retry_base_ms", "must not be over retry_max_ms");
  }
  fetch.io_threads = static_cast<std::size_t>(
      options.GetInt("io_threads", static_cast<std::int64_t>(fetch.io_threads), 1, 64));
  // curl's own bounds for CURLOPT_BUFFERSIZE.
  fetch.recv_buffer_bytes =
      options.GetInt("recv_buffer_bytes", fetch.recv_buffer_bytes, 1024, 10 << 20);
  fetch.allow_private_networks = options.pipeline().allow_private_networks;
  fetch.cache_dir = options.GetString("cache_dir", "");
  fetch.cache_max_bytes =
      options.GetInt("cache_max_bytes", fetch.cache_max_bytes, 1 << 20, 1LL << 50);
  fetch.memcached = options.GetStringList("memcached", {});
  for (const std::string& server : fetch.memcached) {
    if (!IsMemcachedServer(server)) {
      options.AddError("memcached", fmt::format("'{}' is not host:port", server));
    }
  }
  fetch.memcached_max_item_bytes = options.GetInt(
      "memcached_max_item_bytes", fetch.memcached_max_item_bytes, 1024, 1LL << 30);
  fetch.memcached_timeout =
      GetMs(options, "memcached_timeout_ms", fetch.memcached_timeout, 1);
  fetch.cache_threads = static_cast<std::size_t>(options.GetInt(
      "cache_threads", static_cast<std::int64_t>(fetch.cache_threads), 1, 256));
  // Opened (the directory made and indexed) whenever the stage is built, so that
  // a directory that cannot be used is an error in the pipeline's options.
  Result<std::shared_ptr<ContentCache>> cache = OpenFetchCache(fetch);
  if (!cache.ok()) {
    // The tiers' errors start "disk cache" and "memcached".
    const std::string key =
        cache.status().message().starts_with("memcached") ? "memcached" : "cache_dir";
    return InvalidArgument(
        fmt::format("{}.{}: {}", options.path(), key, cache.status().message()));
  }
  return std::unique_ptr<Stage>(
      std::make_unique<FetchStage>(std::move(fetch), std::move(cache).value()));
}

}  // namespace

Status RegisterFetchStage(StageRegistry& registry) {
  return registry.Register("fetch",
                           "downloads each url into \"body\" (libcurl; caps, retries, "
                           "opt-outs, public addresses only by default)",
                           MakeFetch);
}

}  // namespace sluice
