// Fuzzes the HTTP response header parsing of the fetch stage
// (src/stages/http_headers.h): header lines, X-Robots-Tag, Retry-After, Content-Type.
//
// The input is lines: a header line ("Name: value", or anything a server may send),
// then the robot's name, then the directives that opt out (or, for Content-Type, the
// allowed media types), one per line. The header's value is given to every parser,
// whatever its name. Checked:
//   - ParseHeaderLine splits at the first ':' exactly as its contract says;
//   - RobotsTagForbids is false for an empty list, is true for a list exactly when it
//     is for one of its entries, and does not depend on ASCII case;
//   - ParseRetryAfter never asks for a negative delay, nor one over a year;
//   - MediaType is lower case, without parameters or surrounding blanks, and a fixed
//     point; a media type is allowed by itself and by its "type/" prefix.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/stages/http_headers.h"
#include "tests/fuzz/fuzz_check.h"

namespace sluice {
namespace {

constexpr std::string_view kSpaces = " \t\r\n";

std::string_view Trim(std::string_view text) {
  const std::size_t begin = text.find_first_not_of(kSpaces);
  if (begin == std::string_view::npos) return {};
  return text.substr(begin, text.find_last_not_of(kSpaces) - begin + 1);
}

std::string Upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (true) {
    const std::size_t newline = text.find('\n');
    lines.push_back(text.substr(0, newline));
    if (newline == std::string_view::npos) return lines;
    text.remove_prefix(newline + 1);
  }
}

void CheckHeaderLine(std::string_view line) {
  const std::optional<HeaderField> field = ParseHeaderLine(line);
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    SLUICE_FUZZ_CHECK(!field.has_value());
    return;
  }
  const std::string_view name = Trim(line.substr(0, colon));
  if (name.empty() || name.find_first_of(kSpaces) != std::string_view::npos) {
    SLUICE_FUZZ_CHECK(!field.has_value());
    return;
  }
  SLUICE_FUZZ_CHECK(field.has_value());
  SLUICE_FUZZ_CHECK(field->name == name);
  SLUICE_FUZZ_CHECK(field->value == Trim(line.substr(colon + 1)));
  SLUICE_FUZZ_CHECK(EqualsIgnoreCase(field->name, Upper(field->name)));
}

void CheckRobotsTag(std::string_view value, std::string_view robot,
                    const std::vector<std::string>& forbidden) {
  SLUICE_FUZZ_CHECK(!RobotsTagForbids(value, robot, {}));
  const bool forbids = RobotsTagForbids(value, robot, forbidden);
  bool any = false;
  for (const std::string& entry : forbidden) {
    any = any || RobotsTagForbids(value, robot, {entry});
  }
  SLUICE_FUZZ_CHECK(forbids == any);
  std::vector<std::string> upper;
  for (const std::string& entry : forbidden) upper.push_back(Upper(entry));
  SLUICE_FUZZ_CHECK(RobotsTagForbids(Upper(value), Upper(robot), upper) == forbids);
}

void CheckRetryAfter(std::string_view value) {
  // 2024-05-01 12:00:00 UTC, and the epoch.
  for (const std::time_t now : {std::time_t{1714564800}, std::time_t{0}}) {
    const std::optional<std::chrono::milliseconds> delay =
        ParseRetryAfter(value, std::chrono::system_clock::from_time_t(now));
    if (!delay.has_value()) continue;
    SLUICE_FUZZ_CHECK(delay->count() >= 0);
    SLUICE_FUZZ_CHECK(*delay <= std::chrono::hours(24 * 365));
  }
}

void CheckMediaType(std::string_view value, const std::vector<std::string>& allowed) {
  const std::string media_type = MediaType(value);
  SLUICE_FUZZ_CHECK(media_type.find(';') == std::string::npos);
  SLUICE_FUZZ_CHECK(Trim(media_type) == media_type);
  SLUICE_FUZZ_CHECK(std::none_of(media_type.begin(), media_type.end(),
                                 [](char c) { return c >= 'A' && c <= 'Z'; }));
  SLUICE_FUZZ_CHECK(MediaType(media_type) == media_type);
  SLUICE_FUZZ_CHECK(MediaTypeAllowed(media_type, {}));
  const bool allowed_by_list = MediaTypeAllowed(media_type, allowed);
  bool any = false;
  for (const std::string& entry : allowed) {
    any = any || MediaTypeAllowed(media_type, {entry});
  }
  SLUICE_FUZZ_CHECK(allowed_by_list == (any || allowed.empty()));
  if (!media_type.empty() && !media_type.ends_with('/')) {
    SLUICE_FUZZ_CHECK(MediaTypeAllowed(media_type, {media_type}));
    SLUICE_FUZZ_CHECK(MediaTypeAllowed(media_type, {Upper(media_type)}));
    const std::size_t slash = media_type.find('/');
    if (slash != std::string::npos) {
      SLUICE_FUZZ_CHECK(MediaTypeAllowed(media_type, {media_type.substr(0, slash + 1)}));
    }
  }
}

}  // namespace
}  // namespace sluice

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  const std::vector<std::string_view> lines =
      SplitLines(std::string_view(reinterpret_cast<const char*>(data), size));
  const std::string_view header_line = lines[0];
  const std::string_view robot = lines.size() > 1 ? lines[1] : "sluice";
  std::vector<std::string> list;
  for (std::size_t i = 2; i < lines.size(); ++i) list.emplace_back(lines[i]);

  CheckHeaderLine(header_line);
  const std::optional<HeaderField> field = ParseHeaderLine(header_line);
  const std::string_view value = field.has_value() ? field->value : header_line;
  CheckRobotsTag(value, robot, list);
  CheckRetryAfter(value);
  CheckMediaType(value, list);
  return 0;
}
