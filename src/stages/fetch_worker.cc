#include "src/stages/fetch_worker.h"

#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "src/stages/http_headers.h"
#include "src/stages/ssrf_guard.h"

namespace sluice {

// --- the shared DNS cache ---------------------------------------------------------

CurlDnsShare::CurlDnsShare() : share_(curl_share_init()) {
  curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &CurlDnsShare::Lock);
  curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &CurlDnsShare::Unlock);
  curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
  curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
}

CurlDnsShare::~CurlDnsShare() { curl_share_cleanup(share_); }

void CurlDnsShare::Lock(CURL* easy, curl_lock_data data, curl_lock_access access,
                        void* userp) {
  (void)easy;
  (void)access;
  static_cast<CurlDnsShare*>(userp)->locks_[static_cast<std::size_t>(data)].lock();
}

void CurlDnsShare::Unlock(CURL* easy, curl_lock_data data, void* userp) {
  (void)easy;
  static_cast<CurlDnsShare*>(userp)->locks_[static_cast<std::size_t>(data)].unlock();
}

// --- lifecycle --------------------------------------------------------------------

Result<std::unique_ptr<FetchWorker>> FetchWorker::Start(
    const FetchOptions& options, const CurlDnsShare& dns, Done done,
    std::atomic<std::uint64_t>* wakeups) {
  auto loop = EpollEventLoop::Create();
  if (!loop.ok()) return loop.status().WithContext("fetch I/O thread");
  std::unique_ptr<FetchWorker> worker(
      new FetchWorker(options, dns, std::move(done), wakeups, std::move(loop).value()));
  try {
    worker->thread_ = std::thread([w = worker.get()] { w->ThreadMain(); });
  } catch (const std::system_error& e) {
    return Internal(fmt::format("fetch I/O thread: cannot start: {}", e.what()));
  }
  return worker;
}

FetchWorker::FetchWorker(const FetchOptions& options, const CurlDnsShare& dns, Done done,
                         std::atomic<std::uint64_t>* wakeups,
                         std::unique_ptr<EpollEventLoop> loop)
    : options_(options),
      dns_(dns),
      done_(std::move(done)),
      wakeups_(wakeups),
      loop_(std::move(loop)) {
  multi_ = curl_multi_init();
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &FetchWorker::OnSocket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &FetchWorker::OnTimer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  // Keep an idle connection per possible transfer, so keep-alive pays off.
  curl_multi_setopt(
      multi_, CURLMOPT_MAXCONNECTS,
      static_cast<long>(std::min<std::size_t>(options_.max_in_flight, 10'000)));
  for (const std::string& pin : options_.resolve) {
    resolve_ = curl_slist_append(resolve_, pin.c_str());
  }
}

FetchWorker::~FetchWorker() {
  if (thread_.joinable()) {
    stop_.store(true, std::memory_order_release);
    loop_->Wake();
    thread_.join();
  }
  // The thread is gone: what it owned is ours to free.
  shutting_down_ = true;
  if (timer_ != 0) loop_->CancelTimer(timer_);
  for (FetchTransfer* t : in_curl_) {
    curl_multi_remove_handle(multi_, t->easy);
    curl_easy_cleanup(t->easy);
    t->easy = nullptr;
    t->in_curl = false;
  }
  for (CURL* easy : idle_) curl_easy_cleanup(easy);
  curl_multi_cleanup(multi_);
  for (const auto& [fd, socket] : watched_) loop_->UnwatchFd(fd);
  curl_slist_free_all(resolve_);
}

void FetchWorker::Launch(FetchTransfer* t) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(queued_mu_);
    wake = queued_.empty();  // else a wake-up is already on its way
    queued_.push_back(t);
  }
  if (wake) loop_->Wake();
}

void FetchWorker::ThreadMain() {
  while (!stop_.load(std::memory_order_acquire)) {
    loop_->RunOnce();
    // The only writer: a plain load and store, no locked instruction.
    wakeups_->store(wakeups_->load(std::memory_order_relaxed) + 1,
                    std::memory_order_relaxed);
    StartQueued();
  }
}

void FetchWorker::StartQueued() {
  std::vector<FetchTransfer*> queued;
  {
    std::lock_guard<std::mutex> lock(queued_mu_);
    queued.swap(queued_);
  }
  if (queued.empty()) return;
  loop_->RefreshNow();
  for (FetchTransfer* t : queued) StartAttempt(t);
}

// --- attempts ---------------------------------------------------------------------

CURL* FetchWorker::TakeEasy() {
  if (idle_.empty()) return NewEasy();
  CURL* easy = idle_.back();
  idle_.pop_back();
  return easy;
}

CURL* FetchWorker::NewEasy() {
  CURL* easy = curl_easy_init();
  if (easy == nullptr) return nullptr;
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_SHARE, dns_.handle());
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, options_.max_redirects > 0 ? 1L : 0L);
  curl_easy_setopt(easy, CURLOPT_MAXREDIRS, static_cast<long>(options_.max_redirects));
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
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
  curl_easy_setopt(easy, CURLOPT_BUFFERSIZE,
                   static_cast<long>(options_.recv_buffer_bytes));
  curl_easy_setopt(easy, CURLOPT_DNS_CACHE_TIMEOUT,
                   static_cast<long>(options_.dns_cache.count()));
  curl_easy_setopt(easy, CURLOPT_PROXY, options_.proxy.c_str());
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, options_.verify_tls ? 1L : 0L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, options_.verify_tls ? 2L : 0L);
  if (resolve_ != nullptr) curl_easy_setopt(easy, CURLOPT_RESOLVE, resolve_);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &FetchWorker::OnHeader);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &FetchWorker::OnBody);
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &FetchWorker::OnOpenSocket);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, &FetchWorker::OnCloseSocket);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, this);
  return easy;
}

void FetchWorker::StartAttempt(FetchTransfer* t) {
  t->ResetAttempt();
  t->easy = TakeEasy();
  CURL* easy = t->easy;
  if (easy == nullptr) {
    t->Abort(FailureReason::kInternal, "curl_easy_init failed");
    done_(t, CURLE_FAILED_INIT);
    return;
  }
  t->io_thread = this;
  // What differs between attempts; the rest was set once by NewEasy().
  curl_easy_setopt(easy, CURLOPT_URL, t->url.c_str());
  curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error.data());
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, t->attempt_timeout_ms);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, t);
  const CURLMcode code = curl_multi_add_handle(multi_, easy);
  if (code != CURLM_OK) {
    t->Abort(FailureReason::kInternal,
             fmt::format("curl_multi_add_handle: {}", curl_multi_strerror(code)));
    EndAttempt(t, CURLE_FAILED_INIT);
    return;
  }
  t->in_curl = true;
  in_curl_.insert(t);
}

void FetchWorker::EndAttempt(FetchTransfer* t, CURLcode result) {
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
  char* effective = nullptr;
  curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &effective);
  if (effective != nullptr) t->effective_url = effective;
  curl_easy_getinfo(t->easy, CURLINFO_REDIRECT_COUNT, &t->redirects);
  curl_off_t micros = 0;
  if (curl_easy_getinfo(t->easy, CURLINFO_NAMELOOKUP_TIME_T, &micros) == CURLE_OK) t->dns_us = micros;
  if (curl_easy_getinfo(t->easy, CURLINFO_CONNECT_TIME_T, &micros) == CURLE_OK) t->connect_us = micros;
  if (curl_easy_getinfo(t->easy, CURLINFO_APPCONNECT_TIME_T, &micros) == CURLE_OK) t->tls_us = micros;
  if (curl_easy_getinfo(t->easy, CURLINFO_STARTTRANSFER_TIME_T, &micros) == CURLE_OK) {
    t->first_byte_us = micros;
  }
  if (t->in_curl) {
    t->in_curl = false;
    in_curl_.erase(t);
    curl_multi_remove_handle(multi_, t->easy);
  }
  // `t` may be freed before the handle's next attempt: leave curl no pointer into it.
  curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, nullptr);
  idle_.push_back(t->easy);
  t->easy = nullptr;
  done_(t, result);  // `t` is no longer ours
}

void FetchWorker::Action(curl_socket_t fd, int mask) {
  int running = 0;
  curl_multi_socket_action(multi_, fd, mask, &running);
  int left = 0;
  while (CURLMsg* message = curl_multi_info_read(multi_, &left)) {
    if (message->msg != CURLMSG_DONE) continue;
    FetchTransfer* t = nullptr;
    curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &t);
    EndAttempt(t, message->data.result);  // invalidates `message`
  }
}

// --- curl callbacks ---------------------------------------------------------------

std::size_t FetchWorker::OnHeader(char* data, std::size_t size, std::size_t count,
                                  void* userp) {
  auto* t = static_cast<FetchTransfer*>(userp);
  const std::size_t length = size * count;
  const std::string_view line(data, length);
  if (line.starts_with("HTTP/")) {
    t->ResetResponse();
  } else if (line == "\r\n" || line == "\n") {
    return HeadersEnded(t) ? length : 0;
  } else if (std::optional<HeaderField> field = ParseHeaderLine(line)) {
    const FetchOptions& options = *t->options;
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

std::size_t FetchWorker::OnBody(char* data, std::size_t size, std::size_t count,
                                void* userp) {
  auto* t = static_cast<FetchTransfer*>(userp);
  const std::size_t length = size * count;
  const std::int64_t max_bytes = t->options->max_bytes;
  if (static_cast<std::int64_t>(t->body.size() + length) > max_bytes) {
    t->Abort(FailureReason::kTooLarge,
             fmt::format("body over max_bytes ({} bytes)", max_bytes));
    return 0;
  }
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(data);
  t->body.insert(t->body.end(), bytes, bytes + length);  // a memmove
  return length;
}

curl_socket_t FetchWorker::OnOpenSocket(void* userp, curlsocktype purpose,
                                        curl_sockaddr* address) {
  (void)purpose;
  auto* t = static_cast<FetchTransfer*>(userp);
  if (!t->options->allow_private_networks &&
      IsNonPublicAddress(&address->addr, address->addrlen)) {
    t->forbidden_message = fmt::format(
        "address {} is not public (the pipeline may set allow_private_networks)",
        AddressText(&address->addr, address->addrlen));
    return CURL_SOCKET_BAD;
  }
  const int fd =
      socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  if (fd >= 0) {
    FetchWorker* self = t->io_thread;
    // A number still on our books belonged to a socket closed behind our back.
    if (self->watched_.erase(fd) != 0) self->loop_->UnwatchFd(fd);
    self->connections_.insert(fd);
  }
  return fd;
}

bool FetchWorker::HeadersEnded(FetchTransfer* t) {
  const FetchOptions& options = *t->options;
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
               fmt::format("Content-Length {} is over max_bytes ({})", *t->content_length,
                           options.max_bytes));
      return false;
    }
    t->body.reserve(static_cast<std::size_t>(*t->content_length));
  }
  return true;
}

int FetchWorker::OnCloseSocket(void* userp, curl_socket_t fd) {
  auto* self = static_cast<FetchWorker*>(userp);
  // Out of the epoll set and our books before the number can be reused.
  self->connections_.erase(fd);
  if (self->watched_.erase(fd) != 0) self->loop_->UnwatchFd(fd);
  return close(fd);
}

int FetchWorker::OnSocket(CURL* easy, curl_socket_t fd, int what, void* userp,
                          void* socketp) {
  (void)easy;
  (void)socketp;
  auto* self = static_cast<FetchWorker*>(userp);
  if (self->shutting_down_) return 0;
  auto known = self->watched_.find(fd);
  if (what == CURL_POLL_REMOVE) {
    if (known == self->watched_.end()) return 0;
    if (self->connections_.contains(fd)) {
      known->second.parked = true;
    } else {
      self->watched_.erase(known);
      self->loop_->UnwatchFd(fd);
    }
    return 0;
  }
  std::uint32_t events = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= EPOLLIN;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= EPOLLOUT;
  if (known != self->watched_.end() && known->second.events == events) {
    known->second.parked = false;  // already in the set with these events
    return 0;
  }
  auto on_ready = [self, fd](std::uint32_t ready) {
    auto it = self->watched_.find(fd);
    if (it != self->watched_.end() && it->second.parked) {
      self->watched_.erase(it);
      self->loop_->UnwatchFd(fd);
      return;
    }
    int mask = 0;
    if ((ready & EPOLLIN) != 0) mask |= CURL_CSELECT_IN;
    if ((ready & EPOLLOUT) != 0) mask |= CURL_CSELECT_OUT;
    if ((ready & (EPOLLERR | EPOLLHUP)) != 0) mask |= CURL_CSELECT_ERR;
    self->Action(fd, mask);
  };
  Status watched = self->loop_->WatchFd(fd, events, on_ready);
  if (!watched.ok()) {
    // A socket closed behind our back whose number was reused is no longer in the
    // epoll set: forget the stale watch and add it afresh.
    self->loop_->UnwatchFd(fd);
    watched = self->loop_->WatchFd(fd, events, on_ready);
  }
  if (!watched.ok()) {
    self->watched_.erase(fd);
    return -1;  // curl fails the transfer using this socket
  }
  self->watched_[fd] = WatchedSocket{events, false};
  return 0;
}

int FetchWorker::OnTimer(CURLM* multi, long timeout_ms, void* userp) {
  (void)multi;
  auto* self = static_cast<FetchWorker*>(userp);
  if (self->shutting_down_) return 0;
  if (self->timer_ != 0) {
    self->loop_->CancelTimer(self->timer_);
    self->timer_ = 0;
  }
  if (timeout_ms < 0) return 0;
  self->timer_ = self->loop_->AddTimer(std::chrono::milliseconds(timeout_ms), [self] {
    self->timer_ = 0;
    self->Action(CURL_SOCKET_TIMEOUT, 0);
  });
  return 0;
}

}  // namespace sluice
