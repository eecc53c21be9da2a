#include "src/stages/http_headers.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <ctime>

namespace sluice {
namespace {

constexpr std::string_view kSpaces = " \t\r\n";

// The longest delay a Retry-After gets: a year is plenty; larger values are only a
// way to say "not soon".
constexpr std::int64_t kMaxRetryAfterSeconds = 365LL * 86400;

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

int MonthIndex(std::string_view name) {
  static constexpr std::string_view kMonths[] = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i) {
    if (EqualsIgnoreCase(name, kMonths[i])) return i;
  }
  return -1;
}

// Parses the IMF-fixdate form "Sun, 06 Nov 1994 08:49:37 GMT" (the form HTTP/1.1
// servers must send); nullopt for anything else.
std::optional<std::time_t> ParseImfFixdate(std::string_view text) {
  // "Www, DD Mon YYYY HH:MM:SS GMT" is exactly 29 characters.
  if (text.size() != 29 || text[3] != ',' || text[4] != ' ' || text[7] != ' ' ||
      text[11] != ' ' || text[16] != ' ' || text[19] != ':' || text[22] != ':' ||
      text.substr(25) != " GMT") {
    return std::nullopt;
  }
  auto number = [&](std::size_t pos, std::size_t len, int& out) {
    const std::string_view digits = text.substr(pos, len);
    if (digits.find_first_not_of("0123456789") != std::string_view::npos) return false;
    auto [end, error] = std::from_chars(digits.data(), digits.data() + len, out);
    return error == std::errc() && end == digits.data() + len;
  };
  std::tm tm{};
  int year = 0;
  const int month = MonthIndex(text.substr(8, 3));
  if (month < 0 || !number(5, 2, tm.tm_mday) || !number(12, 4, year) ||
      !number(17, 2, tm.tm_hour) || !number(20, 2, tm.tm_min) ||
      !number(23, 2, tm.tm_sec)) {
    return std::nullopt;
  }
  tm.tm_mon = month;
  tm.tm_year = year - 1900;
  return timegm(&tm);
}

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
  value = Trim(value);
  if (value.empty()) return std::nullopt;
  std::uint64_t seconds = 0;
  auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  constexpr std::chrono::milliseconds kMaxDelay(kMaxRetryAfterSeconds * 1000);
  if (error == std::errc() && end == value.data() + value.size()) {
    return std::chrono::milliseconds(
        std::min<std::uint64_t>(seconds, kMaxRetryAfterSeconds) * 1000);
  }
  if (error == std::errc::result_out_of_range) return kMaxDelay;
  const std::optional<std::time_t> when = ParseImfFixdate(value);
  if (!when.has_value()) return std::nullopt;
  // Compared in seconds first: the clock's nanoseconds span only the years 1678 to
  // 2262, and a date may say 9999 (or 0001).
  const std::time_t now_seconds = std::chrono::system_clock::to_time_t(now);
  if (*when > now_seconds + kMaxRetryAfterSeconds) return kMaxDelay;
  if (*when < now_seconds) return std::chrono::milliseconds(0);
  const auto delta = std::chrono::system_clock::from_time_t(*when) - now;
  if (delta <= std::chrono::system_clock::duration::zero()) {
    return std::chrono::milliseconds(0);
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(delta);
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
