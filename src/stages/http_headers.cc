#include "src/stages/http_headers.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <string>

namespace sluice {
namespace {

constexpr std::string_view kSpaces = " \t\r\n";

std::string_view Trim(std::string_view text) {
  const std::size_t begin = text.find_first_not_of(kSpaces);
  if (begin == std::string_view::npos) return {};
  const std::size_t end = text.find_last_not_of(kSpaces);
  return text.substr(begin, end - begin + 1);
}

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Directives that carry a value after ':' and so must not be taken for a robot name.
bool IsValuedDirective(std::string_view name) {
  for (std::string_view known :
       {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}) {
    if (EqualsIgnoreCase(name, known)) return true;
  }
  return false;
}

bool DirectiveForbidden(std::string_view directive,
                        const std::vector<std::string>& forbidden) {
  for (const std::string& entry : forbidden) {
    if (EqualsIgnoreCase(directive, entry)) return true;
    if (EqualsIgnoreCase(directive, "none") && EqualsIgnoreCase(entry, "noindex")) {
      return true;
    }
  }
  return false;
}

// The longest delay a Retry-After is taken for: a year is plenty, larger values are
// only a way to say "not soon".
constexpr std::int64_t kMaxRetryAfterSeconds = 365LL * 86400;

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
           return std::tolower(x) == std::tolower(y);
         });
}

std::optional<HeaderField> ParseHeaderLine(std::string_view line) {
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  HeaderField field{Trim(line.substr(0, colon)), Trim(line.substr(colon + 1))};
  // "HTTP/1.1 200 OK" has no ':' before its first space; a name never holds spaces.
  if (field.name.empty() || field.name.find_first_of(kSpaces) != std::string_view::npos) {
    return std::nullopt;
  }
  return field;
}

bool RobotsTagForbids(std::string_view value, std::string_view robot_name,
                      const std::vector<std::string>& forbidden) {
  if (forbidden.empty()) return false;
  // Directives apply to every robot until a "name:" prefix says otherwise; a prefix
  // applies to the directives after it in the same header value.
  bool applies = true;
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    std::string_view token = Trim(value.substr(0, comma));
    value =
        comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    const std::size_t colon = token.find(':');
    if (colon != std::string_view::npos &&
        !IsValuedDirective(Trim(token.substr(0, colon)))) {
      const std::string_view robot = Trim(token.substr(0, colon));
      applies = EqualsIgnoreCase(robot, robot_name) || robot == "*";
      token = Trim(token.substr(colon + 1));
    }
    if (applies && !token.empty() && DirectiveForbidden(token, forbidden)) return true;
  }
  return false;
}

std::optional<std::chrono::milliseconds> ParseRetryAfter(
    std::string_view value, std::chrono::system_clock::time_point now) {
  using std::chrono::milliseconds;
  constexpr milliseconds kMaxDelay(kMaxRetryAfterSeconds * 1000);
  value = Trim(value);
  if (value.empty()) return std::nullopt;
  std::uint64_t seconds = 0;
  auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (error == std::errc() && end == value.data() + value.size()) {
    return milliseconds(
        std::min<std::uint64_t>(seconds, std::uint64_t{kMaxRetryAfterSeconds}) * 1000);
  }
  if (error == std::errc::result_out_of_range) return kMaxDelay;
  // An HTTP-date, in any of the three forms HTTP/1.1 readers must accept
  // (RFC 9110 5.6.7): IMF-fixdate, RFC 850 and asctime. curl_getdate() reads them
  // all (and more), without locale or time zone, and returns -1 for anything else.
  const std::string text(value);  // curl wants a NUL-terminated string
  const std::int64_t when = curl_getdate(text.c_str(), nullptr);
  if (when < 0) return std::nullopt;
  const std::int64_t now_ms =
      std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count();
  // Compared in seconds first: a date far in the future would overflow milliseconds.
  if (when > now_ms / 1000 + kMaxRetryAfterSeconds) return kMaxDelay;
  // A date that is not in the future asks for a retry at once.
  return milliseconds(
      std::clamp<std::int64_t>(when * 1000 - now_ms, 0, kMaxDelay.count()));
}

std::string MediaType(std::string_view content_type) {
  return Lower(Trim(content_type.substr(0, content_type.find(';'))));
}

bool MediaTypeAllowed(std::string_view media_type,
                      const std::vector<std::string>& allowed) {
  if (allowed.empty()) return true;
  for (const std::string& entry : allowed) {
    if (!entry.empty() && entry.back() == '/') {
      if (media_type.size() > entry.size() &&
          EqualsIgnoreCase(media_type.substr(0, entry.size()), entry)) {
        return true;
      }
    } else if (EqualsIgnoreCase(media_type, entry)) {
      return true;
    }
  }
  return false;
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

}  // namespace sluice
