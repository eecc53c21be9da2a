// fetch: downloads each record's URL with libcurl, thousands of transfers at once on
// the stage's event-loop thread, with the caps and safety rules of DESIGN.md.
//
// Reads:   the record's url
// Writes:  "body"          Bytes, the response body (in-flight data, not a result)
//          "http_status"   int64, of the final response
//          "content_type"  text, the final response's media type ("" if none sent)
//          "bytes"         int64, body size
//          "download_ms"   int64, from the first attempt's start to the last byte
//          "attempts"      int64, 1 + retries used
//          "final_url"     text, only when redirects led elsewhere
//          "cache"         text, only when no download was made for this record:
//                          "disk" or "memcached" (the content cache's tier that
//                          answered), or "duplicate" (another record of the same
//                          URL was in the stage at the same time, and its outcome,
//                          success or failure, is this one's too). Such a record
//                          has "attempts" 0, and "download_ms" is its time in the
//                          stage; the other fields are the download's.
// Fails:   invalid_url  not a parseable absolute URL
//          forbidden    a scheme other than http/https (also in a redirect), or an
//                       address that is not public (see ssrf_guard.h) unless the
//                       pipeline sets allow_private_networks
//          dns, connect, timeout, http_4xx, http_5xx, too_many_redirects
//          too_large    Content-Length or the bytes received over max_bytes
//          opt_out      X-Robots-Tag forbids our use (checked on the headers, before
//                       the body is read)
//          not_image    a Content-Type outside `content_types`
//
// How it works. The stage's own event-loop thread (the control side) admits records,
// keeps the per-host caps and the retry timers, and hands each attempt to one of
// `io_threads` I/O threads (fetch_worker.h), the one with the fewest attempts in hand.
// Each I/O thread has its own event loop and libcurl multi handle, driven through
// curl's socket API; easy handles are reused, so their connections stay alive, and
// all threads share one DNS cache. The end of an attempt comes back to the control
// side through EventLoop::Post, in batches.
//   Politeness: at most `max_host_connections` transfers per host (the URL's host)
// run at once; the others wait in a FIFO per host, which curl never sees, so their
// waiting does not eat into the per-attempt timeout (it does count against
// `item_timeout_ms`).
//   Retries: connection failures, timeouts, HTTP 408, 429 and 5xx are retried up to
// `retries` times after an exponential backoff with full jitter (retry_base_ms *
// 2^n, between half and all of it), or after the server's Retry-After when that is
// longer. A wait over `retry_max_ms`, or one that would end past the item's
// deadline, is not taken: the item fails with the last attempt's reason.
//   Error responses are not read: a final non-2xx status ends the transfer at the
// end of its headers.
//   Content cache (`cache_dir`, `memcached`; src/cache/): when configured, a record
// whose URL was downloaded before is completed from the cache, keyed by the URL
// alone, instead of downloaded. Lookups and stores run on `cache_threads` helper
// threads (AsyncContentCache), whose answers come back through EventLoop::Post.
// Only successful downloads are stored (a 2xx response that passed every check
// above). One record per URL at a time looks up and downloads; others of that URL
// arriving meanwhile wait for its outcome (and are abandoned at their own
// deadline). The cache's errors (a dead memcached server) cost misses only.
//
// Thread-safety: the options are immutable; Start() and the control side's callbacks
// run on the one event-loop thread the runtime gives the stage. The destructor must
// run when that loop no longer runs (the runtime guarantees it); it stops the I/O
// threads first.
#ifndef SLUICE_STAGES_FETCH_STAGE_H_
#define SLUICE_STAGES_FETCH_STAGE_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <tuple>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sluice/record.h"
#include "sluice/stage.h"
#include "src/cache/content_cache.h"

namespace sluice {

struct FetchTransfer;
class FetchWorker;

// Where a transfer is, on the stage's control side.
enum class FetchPhase {
  kNew,        // being checked
  kQueued,     // waiting for a slot of its host
  kAttempt,    // an attempt is in an I/O thread's hands
  kRetryWait,  // waiting for its retry timer
  kCache,      // in a cache lookup, or waiting for another transfer of its URL
};
class CurlDnsShare;
class AsyncContentCache;

struct FetchOptions {
  std::size_t max_in_flight = 1000;      // "max_in_flight": records held at once
  std::size_t max_host_connections = 8;  // "max_host_connections": transfers per host
  std::chrono::milliseconds connect_timeout{10'000};  // "connect_timeout_ms"
  std::chrono::milliseconds timeout{30'000};  // "timeout_ms": one attempt, whole transfer
  std::chrono::milliseconds item_timeout{120'000};  // "item_timeout_ms": all attempts
  std::int64_t low_speed_bytes = 1024;  // "low_speed_bytes": slower than this per second
  std::int64_t low_speed_seconds = 20;  // "low_speed_seconds": for this long is a timeout
  int retries = 2;  // "retries": extra attempts for transient failures
  std::chrono::milliseconds retry_base{500};    // "retry_base_ms": first backoff
  std::chrono::milliseconds retry_max{30'000};  // "retry_max_ms": longest wait taken
  int max_redirects = 5;                        // "max_redirects"
  std::int64_t max_bytes = 32LL << 20;          // "max_bytes": body cap
  // "content_types": accepted media types ("image/" is a prefix); [] accepts all. A
  // response without Content-Type is accepted (decode decides).
  std::vector<std::string> content_types = {"image/", "application/octet-stream",
                                            "binary/octet-stream"};
  std::string user_agent = "sluice/0.1 (image downloader)";  // "user_agent"
  std::string robots_name = "sluice";  // "robots_name": our name in X-Robots-Tag
  // "robots_directives": X-Robots-Tag directives that opt out; [] disables the check.
  std::vector<std::string> robots_directives = {"noai", "noimageai", "noindex",
                                                "noimageindex"};
  bool http2 = true;                    // "http2": negotiate HTTP/2 over TLS
  bool verify_tls = true;               // "verify_tls": check certificates
  std::chrono::seconds dns_cache{300};  // "dns_cache_seconds"
  std::string proxy;                    // "proxy": "" = none (environment ignored)
  // "resolve": "host:port:address" pins, as curl's --resolve (the address rule still
  // applies to them).
  std::vector<std::string> resolve;
  bool allow_private_networks = false;  // the pipeline's allow_private_networks
  // "io_threads": threads running transfers, each with its own multi handle. One
  // thread moves several thousand small images a second; the copies from the
  // kernel's socket buffers are most of its time.
  std::size_t io_threads = 2;
  // "recv_buffer_bytes": libcurl's receive buffer per transfer. Bigger means fewer
  // system calls per image (curl reads, then polls the socket, once per buffer);
  // each transfer in flight touches up to this much of it.
  std::int64_t recv_buffer_bytes = 128 << 10;

  // The content cache (src/cache/); no tier configured means none.
  std::string cache_dir;  // "cache_dir": the disk tier's directory; "" = no disk tier
  std::int64_t cache_max_bytes = 10LL << 30;  // "cache_max_bytes": the disk tier's bound
  std::vector<std::string> memcached;  // "memcached": "host:port" servers; [] = none
  // "memcached_max_item_bytes": larger entries are not sent (memcached's own limit
  // is 1 MiB unless its -I raises it).
  std::int64_t memcached_max_item_bytes = (1 << 20) - 1024;
  // "memcached_timeout_ms": connect, send and receive, per operation.
  std::chrono::milliseconds memcached_timeout{250};
  std::size_t cache_threads = 4;  // "cache_threads": threads for lookups and stores
};

// The content cache `options` configure, nullptr when they configure none. Fails
// when the disk tier's directory cannot be made or read, or a server is not
// host:port.
Result<std::shared_ptr<ContentCache>> OpenFetchCache(const FetchOptions& options);

// Registers "fetch". Values out of range are recorded in the StageOptions.
// Fails if one of the names is registered already.
Status RegisterFetchStage(StageRegistry& registry);

class FetchStage final : public AsyncStage {
 public:
  // `cache`: the content cache to use (OpenFetchCache(options)), or nullptr.
  explicit FetchStage(FetchOptions options,
                      std::shared_ptr<ContentCache> cache = nullptr);
  ~FetchStage() override;

  FetchStage(const FetchStage&) = delete;
  FetchStage& operator=(const FetchStage&) = delete;

  std::size_t max_in_flight() const override { return options_.max_in_flight; }
  void Start(Record record, AsyncContext& ctx) override;
  // item_timeout_ms plus kDeadlineMargin: the stage's own item deadline fails the
  // record first when it can (with a precise message).
  std::chrono::milliseconds record_deadline() const override {
    return options_.item_timeout + kDeadlineMargin;
  }
  // Gives the record back at once, failed as a timeout, whatever its transfer is
  // doing: queued for its host, waiting to retry, or in an attempt (which goes on
  // in its I/O thread until curl ends it; its result is then dropped).
  void Abandon(ItemId id, AsyncContext& ctx) override;
  std::string InFlightSummary() const override;
  StageFields Fields() const override {
    return DeclaredFields({}, {"body", "http_status", "content_type", "bytes",
                               "download_ms", "attempts", "final_url", "cache"});
  }
  // Per attempt: fetch_attempts_total, fetch_responses_total{class=1xx..5xx, or
  // none: no HTTP response}, fetch_retries_total, fetch_redirects_total, and the
  // microseconds summed over the attempts that got that far until the name was
  // resolved, the connection made, TLS done and the first byte came
  // (fetch_{dns,connect,tls,first_byte}_us_total, with fetch_{...}_count_total);
  // fetch_bytes_total of the bodies downloaded. Gauges: transfers by phase
  // (fetch_transfers{phase=attempt|queued|retry_wait|cache}), hosts with transfers
  // in an attempt and waiting (fetch_hosts_active, fetch_hosts_waiting), and for the
  // kBusiestHosts busiest hosts fetch_host_active{host=H} and fetch_host_waiting{host=H}
  // (as of the last second). With a cache, its counters
  // (TieredCache::Counters(), cache_store_drops_total) and
  // cache_duplicate_hits_total (records completed by another record's download of
  // the same URL).
  std::vector<std::pair<std::string, std::uint64_t>> Counters() const override;

  static constexpr std::chrono::milliseconds kDeadlineMargin{2000};

  const FetchOptions& options() const { return options_; }

  // How many times the I/O threads' loops have woken up so far, all threads
  // together. A measure of their work that does not depend on the machine's speed:
  // an idle stage's threads sleep (tests check that closed idle connections do not
  // wake them again and again). Thread-safe.
  std::uint64_t io_wakeups() const;

 private:
  // Starts the I/O threads; false (and `error_` set) if one cannot start.
  bool StartWorkers();
  // Queues `t` behind its host's cap, or launches it.
  void Admit(FetchTransfer* t);
  // Hands an attempt to an I/O thread. Fails the record when the item's time is spent.
  void Launch(FetchTransfer* t);
  // An I/O thread's report that an attempt ended (on that thread).
  void AttemptEnded(FetchTransfer* t, int curl_code);
  // Handles the attempts that ended since the last call. Control thread.
  void HandleEndedAttempts();
  // Decides on an ended attempt: done, retry or failed.
  void AttemptDone(FetchTransfer* t, int curl_code);
  // Frees the host slot of `t` and launches the next waiting transfer of that host.
  void ReleaseHost(FetchTransfer* t);
  // Completes the record (done or failed) and frees the transfer.
  void Finish(FetchTransfer* t);
  // Frees a transfer whose record is gone (abandoned) once it holds nothing.
  void Forget(FetchTransfer* t);
  void SetPhase(FetchTransfer* t, FetchPhase phase);
  // Looks `t`'s URL up, or makes it wait for the transfer of its URL that does.
  void LookUp(FetchTransfer* t);
  // A cache thread's report that a lookup ended (on that thread).
  void LookupEnded(FetchTransfer* t, std::optional<CachedResponse> hit);
  // Handles the lookups that ended since the last call. Control thread.
  void HandleEndedLookups();
  // Completes `t` from `hit`, or downloads it on a miss.
  void LookupDone(FetchTransfer* t, std::optional<CachedResponse> hit);
  // Completes the followers of leader `t` with the outcome in `done`.
  void FinishFollowers(FetchTransfer* t, const Record& done);
  // Makes the first follower of leader `t` (whose record is gone) the leader of the
  // others; returns it, or nullptr (and `t`'s URL has no leader) when none waits.
  FetchTransfer* PromoteFollower(FetchTransfer* t);

  const FetchOptions options_;
  // Null without a cache; its threads start with the I/O threads.
  const std::unique_ptr<AsyncContentCache> cache_;
  AsyncContext* ctx_ = nullptr;  // set by the first Start()
  std::string error_;            // why the I/O threads could not start
  std::unique_ptr<CurlDnsShare> dns_;
  std::vector<std::unique_ptr<FetchWorker>> workers_;
  std::vector<std::size_t> worker_load_;  // attempts in each worker's hands
  // Each I/O thread's wake-ups (io_wakeups()), on a cache line of its own; made
  // with the stage, so that reading them never races with starting the threads.
  struct alignas(64) WakeupCounter {
    std::atomic<std::uint64_t> count{0};
  };
  const std::unique_ptr<WakeupCounter[]> wakeups_;

  std::mutex ended_mu_;
  std::vector<std::pair<FetchTransfer*, int>> ended_;  // guarded by ended_mu_
  std::mutex looked_up_mu_;
  // guarded by looked_up_mu_
  std::vector<std::pair<FetchTransfer*, std::optional<CachedResponse>>> looked_up_;
  // The leader of each URL's transfers (FetchTransfer::cache_leader), with a cache.
  std::unordered_map<std::string, FetchTransfer*> leaders_;
  std::atomic<std::uint64_t> duplicate_hits_{0};
  // Counters() of the attempts; the loop thread adds, any thread reads.
  struct AttemptCounters {
    std::atomic<std::uint64_t> attempts{0};
    std::array<std::atomic<std::uint64_t>, 6> responses{};  // none, 1xx .. 5xx
    std::atomic<std::uint64_t> retries{0};
    std::atomic<std::uint64_t> redirects{0};
    std::atomic<std::uint64_t> bytes{0};
    // dns, connect, tls, first byte: microseconds summed, and attempts counted.
    std::array<std::atomic<std::uint64_t>, 4> phase_us{};
    std::array<std::atomic<std::uint64_t>, 4> phase_count{};
  };
  AttemptCounters attempt_counters_;
  void CountAttempt(const FetchTransfer& t, bool transport_error);

  std::unordered_map<FetchTransfer*, std::unique_ptr<FetchTransfer>> transfers_;
  // The transfers whose record is still here, by item id (for Abandon()).
  std::unordered_map<ItemId, FetchTransfer*> by_id_;
  // Transfers per phase (FetchTransfer::Phase), and abandoned ones still in an
  // attempt: read by InFlightSummary() from other threads.
  std::array<std::atomic<std::size_t>, 5> phase_counts_{};
  std::atomic<std::size_t> abandoned_in_attempt_{0};
  std::atomic<std::size_t> abandoned_in_lookup_{0};
  struct HostQueue {
    std::size_t active = 0;
    std::deque<FetchTransfer*> waiting;
  };
  std::unordered_map<std::string, HostQueue> hosts_;
  // What Counters() tells of hosts_ (which only the control thread reads): remade by
  // the control thread at most once a second as transfers come and go, every second
  // by a timer while any is there (a stage whose transfers all hang still tells of
  // them), and at once when the last one goes.
  struct HostView {
    std::size_t hosts_active = 0;   // hosts with a transfer in an attempt
    std::size_t hosts_waiting = 0;  // hosts with transfers waiting for a slot
    // The busiest hosts (most transfers active + waiting): host, active, waiting.
    std::vector<std::tuple<std::string, std::size_t, std::size_t>> busiest;
  };
  static constexpr std::size_t kBusiestHosts = 5;
  void UpdateHostView(bool now);
  EventLoop::Clock::time_point host_view_at_{};  // control thread
  EventLoop::TimerId host_view_timer_ = 0;  // control thread; 0: none
  mutable std::mutex host_view_mu_;
  HostView host_view_;  // guarded by host_view_mu_
  std::mt19937_64 jitter_{std::random_device{}()};
};

}  // namespace sluice

#endif  // SLUICE_STAGES_FETCH_STAGE_H_
