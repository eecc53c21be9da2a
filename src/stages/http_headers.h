// The parts of HTTP response headers the fetch stage decides on: where a header
// block ends, X-Robots-Tag opt-outs, Retry-After and content types.
//
// All functions are pure and thread-safe. Header names compare case-insensitively,
// as HTTP requires.
#ifndef SLUICE_STAGES_HTTP_HEADERS_H_
#define SLUICE_STAGES_HTTP_HEADERS_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/record.h"

namespace sluice {

// One header line split at its first ':' with both sides trimmed; nullopt for the
// status line, the blank line ending a block, or a line without ':'.
struct HeaderField {
  std::string_view name;
  std::string_view value;
};
std::optional<HeaderField> ParseHeaderLine(std::string_view line);

// True if `a` and `b` are equal ignoring ASCII case.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// True if an X-Robots-Tag value forbids our use. The value is a comma-separated
// list of directives, optionally prefixed by the robot it is meant for
// ("otherbot: noindex, nofollow"). Directives count when they name no robot, or
// name `robot_name` (case-insensitive); `forbidden` lists the directives that opt
// out (e.g. noai, noimageai, noindex, noimageindex), compared case-insensitively.
// "none" means noindex + nofollow, so it opts out whenever noindex does.
bool RobotsTagForbids(std::string_view value, std::string_view robot_name,
                      const std::vector<std::string>& forbidden);

// The delay a Retry-After value asks for: delta-seconds ("120") or an HTTP-date
// ("Wed, 21 Oct 2015 07:28:00 GMT", relative to `now`, never negative), at most a
// year. nullopt when the value is neither.
std::optional<std::chrono::milliseconds> ParseRetryAfter(
    std::string_view value, std::chrono::system_clock::time_point now);

// The media type of a Content-Type value, lower-cased, without parameters:
// "Image/JPEG; charset=x" -> "image/jpeg".
std::string MediaType(std::string_view content_type);

// True if `media_type` matches one of `allowed`: an entry ending in '/' is a prefix
// ("image/"), any other must match exactly. An empty list allows everything.
bool MediaTypeAllowed(std::string_view media_type,
                      const std::vector<std::string>& allowed);

// 301, 302, 303, 307 or 308: a redirect curl follows when it has a Location.
bool IsRedirectStatus(long status);
// 408, 429 and 5xx: worth another attempt.
bool IsTransientStatus(long status);
// The failure reason of a final error status: http_5xx or http_4xx.
FailureReason StatusReason(long status);

}  // namespace sluice

#endif  // SLUICE_STAGES_HTTP_HEADERS_H_
