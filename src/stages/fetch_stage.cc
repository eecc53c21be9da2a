#include "src/stages/fetch_stage.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <mutex>
#include <utility>

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

FetchStage::FetchStage(FetchOptions options)
    : options_(std::move(options)),
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
  // The loop no longer runs. Stop the I/O threads first (they detach the transfers
  // still in curl), then drop every record (the runtime was aborted).
  workers_.clear();
  for (auto& [raw, t] : transfers_) {
    if (t->retry_timer != 0 && ctx_ != nullptr) ctx_->loop().CancelTimer(t->retry_timer);
  }
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
  Admit(t);
}

void FetchStage::Admit(FetchTransfer* t) {
  HostQueue& queue = hosts_[t->host];
  if (queue.active >= options_.max_host_connections) {
    queue.waiting.push_back(t);
    SetPhase(t, FetchPhase::kQueued);
    return;
  }
  queue.active++;
  t->holds_host_slot = true;
  Launch(t);
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
    record.Set("download_ms", ToMs(ctx_->loop().Now() - t->started));
    record.Set("attempts", static_cast<std::int64_t>(t->attempts));
    if (!t->effective_url.empty() && record.url() != t->effective_url) {
      record.Set("final_url", std::move(t->effective_url));
    }
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
  }
  record.Fail(FailureReason::kTimeout,
              fmt::format("fetch: the item's deadline of {} ms passed ({})",
                          record_deadline().count(), where));
  ctx.Complete(std::move(record));
}

std::string FetchStage::InFlightSummary() const {
  auto count = [&](FetchPhase phase) {
    return phase_counts_[static_cast<std::size_t>(phase)].load();
  };
  return fmt::format(
      "transfers: {} in an attempt, {} waiting for a host slot, {} waiting to retry, "
      "{} past their deadline still in curl",
      count(FetchPhase::kAttempt), count(FetchPhase::kQueued) + count(FetchPhase::kNew),
      count(FetchPhase::kRetryWait), abandoned_in_attempt_.load());
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
  return std::unique_ptr<Stage>(std::make_unique<FetchStage>(std::move(fetch)));
}

}  // namespace

void RegisterFetchStage(StageRegistry& registry) {
  registry.Register("fetch",
                    "downloads each url into \"body\" (libcurl; caps, retries, "
                    "opt-outs, public addresses only by default)",
                    MakeFetch);
}

}  // namespace sluice
