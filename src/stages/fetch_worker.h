// FetchWorker: one I/O thread of the fetch stage (fetch_stage.h), with its own
// event loop and libcurl multi handle.
//
// The stage's control thread decides what to fetch and when (per-host caps, retries,
// deadlines) and hands each attempt to a worker with Launch(). The worker runs it on
// its multi handle, driven through curl's socket API on its loop (curl says which
// sockets to watch and when to wake it), and reports the end of the attempt through
// the `done` callback, on the worker's thread. Easy handles are reused, so their
// connections stay alive between transfers; every worker resolves names through one
// DNS cache shared by the stage (CurlDnsShare).
//
// What the worker decides on its own, from the headers of each response, before any
// body byte: the status (error bodies are never read), X-Robots-Tag opt-outs, the
// Content-Type allow list and Content-Length against max_bytes; during the body:
// max_bytes; for every socket curl opens: the address rule (ssrf_guard.h).
//
// Thread-safety: Launch() from any thread; the rest of the work runs on the worker's
// thread. The destructor stops and joins it, then detaches the transfers still in
// curl (their easy handles are freed; the transfers themselves are the stage's).
#ifndef SLUICE_STAGES_FETCH_WORKER_H_
#define SLUICE_STAGES_FETCH_WORKER_H_

#include <curl/curl.h>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sluice/status.h"
#include "src/core/event_loop.h"
#include "src/stages/fetch_stage.h"
#include "src/stages/fetch_transfer.h"

namespace sluice {

// A curl share handle holding the DNS cache of every worker of a stage, with the
// locks curl asks for. Outlives the workers.
class CurlDnsShare {
 public:
  CurlDnsShare();
  ~CurlDnsShare();
  CurlDnsShare(const CurlDnsShare&) = delete;
  CurlDnsShare& operator=(const CurlDnsShare&) = delete;

  CURLSH* handle() const { return share_; }

 private:
  static void Lock(CURL* easy, curl_lock_data data, curl_lock_access access, void* userp);
  static void Unlock(CURL* easy, curl_lock_data data, void* userp);

  CURLSH* share_ = nullptr;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> locks_;
};

class FetchWorker {
 public:
  // Called on the worker's thread when an attempt ended, with curl's result; the
  // transfer is the caller's again.
  using Done = std::function<void(FetchTransfer*, int curl_code)>;

  // `options`, `dns` and `wakeups` must outlive the worker. Starts the thread; fails
  // if its loop cannot be created (std::system_error if the thread cannot start is
  // turned into an error too). The thread adds one to `*wakeups` (which only it
  // writes) each time its loop wakes up.
  static Result<std::unique_ptr<FetchWorker>> Start(const FetchOptions& options,
                                                    const CurlDnsShare& dns, Done done,
                                                    std::atomic<std::uint64_t>* wakeups);
  ~FetchWorker();

  FetchWorker(const FetchWorker&) = delete;
  FetchWorker& operator=(const FetchWorker&) = delete;

  // Queues an attempt of `t` (t->attempt_timeout_ms set). Thread-safe.
  void Launch(FetchTransfer* t);

 private:
  FetchWorker(const FetchOptions& options, const CurlDnsShare& dns, Done done,
              std::atomic<std::uint64_t>* wakeups, std::unique_ptr<EpollEventLoop> loop);

  void ThreadMain();
  // Starts the attempts queued by Launch(). Worker thread.
  void StartQueued();
  void StartAttempt(FetchTransfer* t);
  // Ends an attempt: detaches it from curl, keeps what the control side needs, and
  // reports it.
  void EndAttempt(FetchTransfer* t, CURLcode result);
  // An easy handle with the options every attempt shares already set: an idle one
  // (curl keeps options between transfers) or a new one.
  CURL* TakeEasy();
  CURL* NewEasy();

  // curl callbacks.
  static std::size_t OnHeader(char* data, std::size_t size, std::size_t count,
                              void* userp);
  static std::size_t OnBody(char* data, std::size_t size, std::size_t count, void* userp);
  static curl_socket_t OnOpenSocket(void* userp, curlsocktype purpose,
                                    curl_sockaddr* address);
  static int OnCloseSocket(void* userp, curl_socket_t fd);
  static int OnSocket(CURL* easy, curl_socket_t fd, int what, void* userp, void* socketp);
  static int OnTimer(CURLM* multi, long timeout_ms, void* userp);
  // The end of a response's headers: decides whether to read its body.
  static bool HeadersEnded(FetchTransfer* t);
  // Lets curl act on `fd` (or on its timeout) and ends the attempts it finished.
  void Action(curl_socket_t fd, int mask);

  const FetchOptions& options_;
  const CurlDnsShare& dns_;
  const Done done_;
  std::atomic<std::uint64_t>* const wakeups_;  // written by the worker's thread only
  const std::unique_ptr<EpollEventLoop> loop_;
  std::thread thread_;
  std::atomic<bool> stop_{false};

  std::mutex queued_mu_;
  std::vector<FetchTransfer*> queued_;  // guarded by queued_mu_

  // Worker thread.
  CURLM* multi_ = nullptr;
  curl_slist* resolve_ = nullptr;
  EventLoop::TimerId timer_ = 0;
  std::vector<CURL*> idle_;  // configured by NewEasy(), between attempts
  // The sockets in the loop's epoll set. A connection's socket curl no longer
  // watches (CURL_POLL_REMOVE: the connection went idle between transfers) stays
  // there, parked, so that the next transfer on the connection costs no epoll_ctl;
  // an event on a parked socket (the server closed the idle connection) removes it,
  // and so does closing it (OnCloseSocket), before a new socket can take its number.
  // Only sockets opened and closed through our callbacks are parked (`connections_`):
  // curl closes others itself (its resolver's socket pair), so a number left parked
  // for one of those could be taken by a new socket that would then never be watched.
  struct WatchedSocket {
    std::uint32_t events = 0;
    bool parked = false;
  };
  std::unordered_map<int, WatchedSocket> watched_;
  std::unordered_set<int> connections_;  // opened by OnOpenSocket, not yet closed
  std::unordered_set<FetchTransfer*> in_curl_;
  bool shutting_down_ = false;
};

}  // namespace sluice

#endif  // SLUICE_STAGES_FETCH_WORKER_H_
