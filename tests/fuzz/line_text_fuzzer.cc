// Fuzzes the checks every input line goes through (src/input/line_text.h).
//
// The input is the line's bytes. Checked:
//   - CheckText agrees with a byte-at-a-time validator written from the Unicode
//     standard's table 3-7 (CheckText reads eight ASCII bytes at a time);
//   - MakeExcerpt is valid text of at most kExcerptBytes shown bytes, and shows a
//     short line of printable ASCII without a backslash as it is;
//   - AppendJsonString and AppendJsonMember make JSON that reads back as the text;
//   - TrimBlanks leaves no blank at either end and only removes blanks.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "src/input/line_text.h"
#include "tests/fuzz/fuzz_check.h"

namespace sluice {
namespace {

// Unicode 15, table 3-7: well-formed UTF-8 byte sequences. Returns the first
// problem, or kNone; with `controls` false, control characters are not problems.
TextProblem ReferenceCheck(std::string_view text, bool controls = true) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (controls && ((c < 0x20 && c != '\t') || c == 0x7f)) {
        return TextProblem::kControlCharacter;
      }
      ++i;
      continue;
    }
    std::size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xbf;  // the range of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      length = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      length = 3;
      if (c == 0xe0) low = 0xa0;
      if (c == 0xed) high = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      length = 4;
      if (c == 0xf0) low = 0x90;
      if (c == 0xf4) high = 0x8f;
    } else {
      return TextProblem::kInvalidUtf8;
    }
    if (i + length > text.size()) return TextProblem::kInvalidUtf8;
    const auto second = static_cast<unsigned char>(text[i + 1]);
    if (second < low || second > high) return TextProblem::kInvalidUtf8;
    for (std::size_t k = 2; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if (next < 0x80 || next > 0xbf) return TextProblem::kInvalidUtf8;
    }
    i += length;
  }
  return TextProblem::kNone;
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

}  // namespace
}  // namespace sluice

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const TextProblem problem = CheckText(text);
  SLUICE_FUZZ_CHECK(problem == ReferenceCheck(text));

  const std::string excerpt = MakeExcerpt(text);
  SLUICE_FUZZ_CHECK(CheckText(excerpt) == TextProblem::kNone);
  SLUICE_FUZZ_CHECK(excerpt.size() <= 4 * kExcerptBytes + 3);
  if (text.size() > kExcerptBytes) SLUICE_FUZZ_CHECK(excerpt.ends_with("..."));
  const bool plain = text.find_first_not_of(
                         " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "[]^_`abcdefghijklmnopqrstuvwxyz{|}~") == std::string_view::npos;
  if (plain && text.size() <= kExcerptBytes) SLUICE_FUZZ_CHECK(excerpt == text);

  const std::string_view trimmed = TrimBlanks(text);
  SLUICE_FUZZ_CHECK(trimmed.empty() ||
                    (!IsBlank(trimmed.front()) && !IsBlank(trimmed.back())));
  SLUICE_FUZZ_CHECK(text.find(trimmed) != std::string_view::npos);
  const std::size_t begin = static_cast<std::size_t>(trimmed.data() - text.data());
  if (!trimmed.empty()) {
    for (std::size_t i = 0; i < begin; ++i) SLUICE_FUZZ_CHECK(IsBlank(text[i]));
    for (std::size_t i = begin + trimmed.size(); i < text.size(); ++i) {
      SLUICE_FUZZ_CHECK(IsBlank(text[i]));
    }
  }

  // JSON quoting REQUIRES valid UTF-8; control characters are fine.
  if (ReferenceCheck(text, /*controls=*/false) == TextProblem::kNone) {
    std::string quoted;
    AppendJsonString(text, &quoted);
    const auto parsed = nlohmann::json::parse(quoted, nullptr, false);
    SLUICE_FUZZ_CHECK(parsed.is_string() && parsed.get<std::string>() == text);

    // An object of two members: the text's first half as a name (cut between two
    // UTF-8 sequences), the text as a value.
    std::size_t half = text.size() / 2;
    while (half > 0 && (static_cast<unsigned char>(text[half]) & 0xc0) == 0x80) --half;
    std::string object;
    AppendJsonMember(text.substr(0, half), text, &object);
    AppendJsonMember("second", "", &object);
    CloseJsonObject(&object);
    const auto members = nlohmann::json::parse(object, nullptr, false);
    SLUICE_FUZZ_CHECK(members.is_object());
    if (text.substr(0, half) != "second") {
      SLUICE_FUZZ_CHECK(members.size() == 2);
      SLUICE_FUZZ_CHECK(members.at(std::string(text.substr(0, half))) == text);
    }
  }
  return 0;
}
