// FetchTransfer: the state of one record inside the fetch stage (fetch_stage.h),
// shared by the stage's control side and its I/O threads (fetch_worker.h).
//
// Ownership passes back and forth, never shared: the control thread (the stage's
// event loop) owns a transfer until it hands an attempt to an I/O thread, which owns
// it until the attempt ends and hands it back. Each hand-over goes through a mutex,
// so whatever one side wrote is visible to the other.
#ifndef SLUICE_STAGES_FETCH_TRANSFER_H_
#define SLUICE_STAGES_FETCH_TRANSFER_H_

#include <curl/curl.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sluice/record.h"
#include "sluice/stage.h"
#include "src/stages/fetch_stage.h"

namespace sluice {

class FetchWorker;

struct FetchTransfer {
  using Clock = EventLoop::Clock;

  const FetchOptions* options = nullptr;
  // The record is the control side's alone, all along: the I/O side reads `url`,
  // a copy, so that the control side can give the record back at its deadline
  // whatever the attempt is doing.
  Record record;
  std::string url;
  std::string host;  // the URL's host: the politeness key

  // Control side.
  FetchPhase phase = FetchPhase::kNew;
  // The runtime's deadline passed and the record was given back: the transfer only
  // waits for its attempt to end, to be freed.
  bool abandoned = false;
  bool holds_host_slot = false;  // counted in the stage's per-host tally
  // With a content cache, one transfer per URL at a time (the leader) looks it up
  // and downloads it; the others of that URL (its followers) wait for its outcome.
  bool cache_leader = false;
  std::vector<FetchTransfer*> followers;  // the leader's
  EventLoop::TimerId retry_timer = 0;
  std::size_t worker = 0;  // the I/O thread of the current attempt
  int attempts = 0;
  Clock::time_point started;    // first attempt
  Clock::time_point deadline;   // started + item_timeout
  long attempt_timeout_ms = 0;  // set before each attempt

  // I/O side, during an attempt.
  CURL* easy = nullptr;
  FetchWorker* io_thread = nullptr;  // the worker running the attempt
  bool in_curl = false;              // added to the worker's multi handle

  // Per response (header block); reset at each one: redirects and 1xx come first.
  std::string content_type;
  std::string robots_value;  // the X-Robots-Tag value that opted out, if any
  std::optional<std::chrono::milliseconds> retry_after;
  std::optional<std::int64_t> content_length;
  bool has_location = false;

  // Per attempt, filled by the I/O side, read by the control side afterwards.
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
  long status = 0;            // the final response's HTTP status, 0 if none
  std::string effective_url;  // the URL of the final response
  // From curl, per attempt: redirects followed, and microseconds from the start
  // until the name was resolved, the TCP connection made, TLS done (0 without TLS)
  // and the first byte of the response came (0 for a phase never reached).
  long redirects = 0;
  std::int64_t dns_us = 0;
  std::int64_t connect_us = 0;
  std::int64_t tls_us = 0;
  std::int64_t first_byte_us = 0;

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
    status = 0;
    effective_url.clear();
  }

  // Stops the transfer from a callback with `reason`.
  void Abort(FailureReason reason, std::string message, bool transient = false) {
    abort_reason = reason;
    abort_message = std::move(message);
    abort_transient = transient;
  }
};

}  // namespace sluice

#endif  // SLUICE_STAGES_FETCH_TRANSFER_H_
