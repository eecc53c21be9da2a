#include "src/stages/fetch_stage.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <mutex>
#include <optional>
#include <utility>

#include "src/stages/http_headers.h"
#include "src/stages/ssrf_guard.h"

namespace sluice {
namespace {

using LoopClock = EventLoop::Clock;
using std::chrono::milliseconds;

void GlobalInitCurl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool IsRedirectStatus(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 ||
         status == 308;
}

bool IsTransientStatus(long status) {
  return status == 408 || status == 429 || status >= 500;
}

FailureReason StatusReason(long status) {
  return status >= 500 ? FailureReason::kHttp5xx : FailureReason::kHttp4xx;
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

// --- per-record state -------------------------------------------------------------

struct FetchStage::Transfer {
  FetchStage* stage = nullptr;
  Record record;
  std::string host;  // the URL's host: the politeness key
  CURL* easy = nullptr;
  bool in_curl = false;          // added to the multi handle
  bool holds_host_slot = false;  // counted in hosts_[host].active
  EventLoop::TimerId retry_timer = 0;
  int attempts = 0;
  LoopClock::time_point started;   // first attempt
  LoopClock::time_point deadline;  // started + item_timeout

  // Per response (header block); reset at each one: redirects and 1xx come first.
  std::string content_type;
  std::string robots_value;  // the X-Robots-Tag value that opted out, if any
  std::optional<milliseconds> retry_after;
  std::optional<std::int64_t> content_length;
  bool has_location = false;

  // Per attempt.
  // Set when a callback stopped the transfer on purpose (curl then reports
  // CURLE_WRITE_ERROR); wins over curl's own result.
  FailureReason abort_reason = FailureReason::kNone;
  std::string abort_message;
  bool abort_transient = false;
  // Set when the address rule refused a socket. With several addresses per host
  // another may still connect; only a failed connection is reported as forbidden.
  std::string forbidden_message;
  Bytes body;
  std::array<char, CURL_ERROR_SIZE> error{};

  void ResetResponse() {
    content_type.clear();
    robots_value.clear();
    retry_after.reset();
    content_length.reset();
    has_location = false;
  }

  void ResetAttempt() {
    ResetResponse();
    abort_reason = FailureReason::kNone;
    abort_message.clear();
    abort_transient = false;
    forbidden_message.clear();
    body.clear();
    error[0] = '\0';
  }

  // Stops the transfer from a callback with `reason`.
  void Abort(FailureReason reason, std::string message, bool transient = false) {
    abort_reason = reason;
    abort_message = std::move(message);
    abort_transient = transient;
  }
};

// --- the multi handle ------------------------------------------------------------

class FetchStage::Curl {
 public:
  Curl(FetchStage& stage, EventLoop& loop) : stage_(stage), loop_(loop) {
    multi_ = curl_multi_init();
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &Curl::OnSocket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &Curl::OnTimer);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    // Keep an idle connection per possible transfer, so keep-alive pays off.
    curl_multi_setopt(
        multi_, CURLMOPT_MAXCONNECTS,
        static_cast<long>(std::min<std::size_t>(stage.options_.max_in_flight, 10'000)));
    for (const std::string& pin : stage.options_.resolve) {
      resolve_ = curl_slist_append(resolve_, pin.c_str());
    }
  }

  ~Curl() {
    shutting_down_ = true;
    if (timer_ != 0) loop_.CancelTimer(timer_);
    for (CURL* easy : idle_) curl_easy_cleanup(easy);
    curl_multi_cleanup(multi_);
    for (int fd : watched_) loop_.UnwatchFd(fd);
    curl_slist_free_all(resolve_);
  }

  Curl(const Curl&) = delete;
  Curl& operator=(const Curl&) = delete;

  // An easy handle, reused when possible.
  CURL* TakeEasy() {
    if (idle_.empty()) return curl_easy_init();
    CURL* easy = idle_.back();
    idle_.pop_back();
    curl_easy_reset(easy);
    return easy;
  }
  void ReturnEasy(CURL* easy) { idle_.push_back(easy); }

  void Add(Transfer* t) {
    t->in_curl = true;
    CURLMcode code = curl_multi_add_handle(multi_, t->easy);
    if (code != CURLM_OK) {
      // Reported from a timer, never from inside the caller's own bookkeeping.
      t->in_curl = false;
      t->Abort(FailureReason::kInternal,
               fmt::format("curl_multi_add_handle: {}", curl_multi_strerror(code)));
      loop_.AddTimer(milliseconds(0),
                     [this, t] { stage_.AttemptDone(t, CURLE_FAILED_INIT); });
    }
  }

  void Remove(Transfer* t) {
    if (!t->in_curl) return;
    t->in_curl = false;
    curl_multi_remove_handle(multi_, t->easy);
  }

  const curl_slist* resolve() const { return resolve_; }

  // Header lines of every response of a transfer (redirects included).
  static std::size_t OnHeader(char* data, std::size_t size, std::size_t count,
                              void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    const std::size_t length = size * count;
    const std::string_view line(data, length);
    if (line.starts_with("HTTP/")) {
      t->ResetResponse();
    } else if (line == "\r\n" || line == "\n") {
      return HeadersEnded(t) ? length : 0;
    } else if (std::optional<HeaderField> field = ParseHeaderLine(line)) {
      const FetchOptions& options = t->stage->options_;
      if (EqualsIgnoreCase(field->name, "content-type")) {
        t->content_type = MediaType(field->value);
      } else if (EqualsIgnoreCase(field->name, "retry-after")) {
        t->retry_after = ParseRetryAfter(field->value, std::chrono::system_clock::now());
      } else if (EqualsIgnoreCase(field->name, "location")) {
        t->has_location = !field->value.empty();
      } else if (EqualsIgnoreCase(field->name, "content-length")) {
        std::int64_t value = 0;
        auto [end, error] = std::from_chars(
            field->value.data(), field->value.data() + field->value.size(), value);
        if (error == std::errc() && value >= 0) t->content_length = value;
      } else if (EqualsIgnoreCase(field->name, "x-robots-tag") &&
                 RobotsTagForbids(field->value, options.robots_name,
                                  options.robots_directives)) {
        t->robots_value = std::string(field->value);
      }
    }
    return length;
  }

  // Body bytes of the final response.
  static std::size_t OnBody(char* data, std::size_t size, std::size_t count,
                            void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    const std::size_t length = size * count;
    const std::int64_t max_bytes = t->stage->options_.max_bytes;
    if (static_cast<std::int64_t>(t->body.size() + length) > max_bytes) {
      t->Abort(FailureReason::kTooLarge,
               fmt::format("body over max_bytes ({} bytes)", max_bytes));
      return 0;
    }
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(data);
    t->body.insert(t->body.end(), bytes,
                   bytes + length);  // a memmove, unlike char to uint8_t
    return length;
  }

  // Every socket curl opens for a transfer: the address rule (ssrf_guard.h).
  static curl_socket_t OnOpenSocket(void* userp, curlsocktype purpose,
                                    curl_sockaddr* address) {
    (void)purpose;
    auto* t = static_cast<Transfer*>(userp);
    if (IsNonPublicAddress(&address->addr, address->addrlen)) {
      t->forbidden_message = fmt::format(
          "address {} is not public (the pipeline may set allow_private_networks)",
          AddressText(&address->addr, address->addrlen));
      return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  }

 private:
  // The end of a response's headers: decides whether to read its body.
  static bool HeadersEnded(Transfer* t) {
    const FetchOptions& options = t->stage->options_;
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 100 && status < 200) return true;  // informational: more follows
    if (IsRedirectStatus(status) && t->has_location && options.max_redirects > 0) {
      return true;  // curl follows it (and enforces max_redirects)
    }
    if (IsRedirectStatus(status) || (status >= 300 && status < 400)) {
      t->Abort(FailureReason::kStage, fmt::format("HTTP {} without a Location", status));
      return false;
    }
    if (status < 200 || status > 299) {
      std::string message = fmt::format("HTTP {}", status);
      if (t->retry_after.has_value()) {
        message += fmt::format(" (Retry-After {} ms)", t->retry_after->count());
      }
      t->Abort(StatusReason(status), std::move(message), IsTransientStatus(status));
      return false;
    }
    if (!t->robots_value.empty()) {
      t->Abort(FailureReason::kOptOut,
               fmt::format("X-Robots-Tag '{}' opts out", t->robots_value));
      return false;
    }
    if (!t->content_type.empty() &&
        !MediaTypeAllowed(t->content_type, options.content_types)) {
      t->Abort(FailureReason::kNotImage,
               fmt::format("Content-Type {} is not accepted", t->content_type));
      return false;
    }
    if (t->content_length.has_value()) {
      if (*t->content_length > options.max_bytes) {
        t->Abort(FailureReason::kTooLarge,
                 fmt::format("Content-Length {} is over max_bytes ({})",
                             *t->content_length, options.max_bytes));
        return false;
      }
      t->body.reserve(static_cast<std::size_t>(*t->content_length));
    }
    return true;
  }

 public:
 private:
  static int OnSocket(CURL* easy, curl_socket_t fd, int what, void* userp,
                      void* socketp) {
    (void)easy;
    (void)socketp;
    auto* self = static_cast<Curl*>(userp);
    if (self->shutting_down_) return 0;
    if (what == CURL_POLL_REMOVE) {
      self->loop_.UnwatchFd(fd);
      self->watched_.erase(fd);
      return 0;
    }
    std::uint32_t events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= EPOLLOUT;
    auto on_ready = [self, fd](std::uint32_t ready) {
      int mask = 0;
      if ((ready & EPOLLIN) != 0) mask |= CURL_CSELECT_IN;
      if ((ready & EPOLLOUT) != 0) mask |= CURL_CSELECT_OUT;
      if ((ready & (EPOLLERR | EPOLLHUP)) != 0) mask |= CURL_CSELECT_ERR;
      self->Action(fd, mask);
    };
    Status watched = self->loop_.WatchFd(fd, events, on_ready);
    if (!watched.ok()) {
      // A closed fd whose number was reused is no longer in the epoll set: forget
      // the stale watch and add it afresh.
      self->loop_.UnwatchFd(fd);
      watched = self->loop_.WatchFd(fd, events, on_ready);
    }
    if (!watched.ok()) return -1;  // curl fails the transfer using this socket
    self->watched_.insert(fd);
    return 0;
  }

  static int OnTimer(CURLM* multi, long timeout_ms, void* userp) {
    (void)multi;
    auto* self = static_cast<Curl*>(userp);
    if (self->shutting_down_) return 0;
    if (self->timer_ != 0) {
      self->loop_.CancelTimer(self->timer_);
      self->timer_ = 0;
    }
    if (timeout_ms < 0) return 0;
    self->timer_ = self->loop_.AddTimer(milliseconds(timeout_ms), [self] {
      self->timer_ = 0;
      self->Action(CURL_SOCKET_TIMEOUT, 0);
    });
    return 0;
  }

  void Action(curl_socket_t fd, int mask) {
    int running = 0;
    curl_multi_socket_action(multi_, fd, mask, &running);
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(multi_, &left)) {
      if (message->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &t);
      const CURLcode result = message->data.result;
      Remove(t);  // invalidates `message`
      stage_.AttemptDone(t, result);
    }
  }

  FetchStage& stage_;
  EventLoop& loop_;
  CURLM* multi_ = nullptr;
  curl_slist* resolve_ = nullptr;
  EventLoop::TimerId timer_ = 0;
  std::vector<CURL*> idle_;
  std::unordered_set<int> watched_;
  bool shutting_down_ = false;
};

// --- FetchStage ---------------------------------------------------------------------

FetchStage::FetchStage(FetchOptions options) : options_(std::move(options)) {
  GlobalInitCurl();
}

FetchStage::~FetchStage() {
  // The loop no longer runs. Detach every transfer from curl before the multi
  // handle goes; their records are dropped (the runtime was aborted).
  for (auto& [raw, t] : transfers_) {
    if (t->retry_timer != 0 && ctx_ != nullptr) ctx_->loop().CancelTimer(t->retry_timer);
    if (curl_ != nullptr) curl_->Remove(t.get());
    if (t->easy != nullptr) curl_easy_cleanup(t->easy);
  }
  transfers_.clear();
  curl_.reset();
}

void FetchStage::Start(Record record, AsyncContext& ctx) {
  if (ctx_ == nullptr) {
    ctx_ = &ctx;
    curl_ = std::make_unique<Curl>(*this, ctx.loop());
  }
  auto owned = std::make_unique<Transfer>();
  Transfer* t = owned.get();
  t->stage = this;
  t->record = std::move(record);
  t->started = ctx.loop().Now();
  t->deadline = t->started + options_.item_timeout;
  transfers_.emplace(t, std::move(owned));

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

void FetchStage::Admit(Transfer* t) {
  HostQueue& queue = hosts_[t->host];
  if (queue.active >= options_.max_host_connections) {
    queue.waiting.push_back(t);
    return;
  }
  queue.active++;
  t->holds_host_slot = true;
  Launch(t);
}

void FetchStage::ReleaseHost(Transfer* t) {
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
    Transfer* next = it->second.waiting.front();
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

void FetchStage::Launch(Transfer* t) {
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
  t->ResetAttempt();
  if (t->easy == nullptr) t->easy = curl_->TakeEasy();
  CURL* easy = t->easy;
  const long attempt_ms = static_cast<long>(
      std::max<std::int64_t>(1, std::min(ToMs(left), options_.timeout.count())));
  curl_easy_setopt(easy, CURLOPT_URL, t->record.url().c_str());
  curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error.data());
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, options_.max_redirects > 0 ? 1L : 0L);
  curl_easy_setopt(easy, CURLOPT_MAXREDIRS, static_cast<long>(options_.max_redirects));
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, attempt_ms);
  if (options_.low_speed_seconds > 0) {
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT,
                     static_cast<long>(options_.low_speed_bytes));
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME,
                     static_cast<long>(options_.low_speed_seconds));
  }
  // max_bytes is enforced by the header and body callbacks (not CURLOPT_MAXFILESIZE,
  // which would fail before the headers could be checked for other reasons).
  curl_easy_setopt(easy, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION,
                   options_.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(easy, CURLOPT_DNS_CACHE_TIMEOUT,
                   static_cast<long>(options_.dns_cache.count()));
  curl_easy_setopt(easy, CURLOPT_PROXY, options_.proxy.c_str());
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, options_.verify_tls ? 1L : 0L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, options_.verify_tls ? 2L : 0L);
  if (curl_->resolve() != nullptr) {
    curl_easy_setopt(easy, CURLOPT_RESOLVE, const_cast<curl_slist*>(curl_->resolve()));
  }
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Curl::OnHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Curl::OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
  if (!options_.allow_private_networks) {
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &Curl::OnOpenSocket);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, t);
  }
  curl_->Add(t);
}

void FetchStage::AttemptDone(Transfer* t, int curl_code) {
  const auto code = static_cast<CURLcode>(curl_code);
  long status = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);

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
    char* effective = nullptr;
    curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &effective);
    record.Set("http_status", static_cast<std::int64_t>(status));
    record.Set("content_type", t->content_type);
    record.Set("bytes", static_cast<std::int64_t>(t->body.size()));
    record.Set("download_ms", ToMs(ctx_->loop().Now() - t->started));
    record.Set("attempts", static_cast<std::int64_t>(t->attempts));
    if (effective != nullptr && record.url() != effective) {
      record.Set("final_url", std::string(effective));
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

void FetchStage::Finish(Transfer* t) {
  if (t->easy != nullptr) {
    curl_->Remove(t);
    curl_->ReturnEasy(t->easy);
    t->easy = nullptr;
  }
  Record record = std::move(t->record);
  ReleaseHost(t);  // may launch the host's next transfer
  transfers_.erase(t);
  ctx_->Complete(std::move(record));
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
