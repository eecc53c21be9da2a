#include "src/input/line_text.h"

#include <cstdint>
#include <cstring>

namespace sluice {
namespace {

constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;

// True if some byte of `word` is below 0x20 or equal to 0x7f. REQUIRES: every byte
// of `word` is below 0x80 (the classic "has less than" and "has zero" bit tricks are
// exact under that condition).
bool HasControlByte(std::uint64_t word) {
  const std::uint64_t below_space = (word - kOnes * 0x20) & ~word & kHighBits;
  const std::uint64_t del = word ^ (kOnes * 0x7f);
  const std::uint64_t is_del = (del - kOnes) & ~del & kHighBits;
  return (below_space | is_del) != 0;
}

bool IsContinuation(unsigned char c) { return (c & 0xc0) == 0x80; }

// Returns the length of the well-formed UTF-8 sequence starting at text[i] (a byte of
// 0x80 or more), or 0 if it is not one. Rejects overlong forms, surrogates and code
// points above U+10FFFF, as the Unicode standard (table 3-7) requires.
std::size_t Utf8SequenceLength(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) {
    return static_cast<unsigned char>(text[i + k]);
  };
  const unsigned char c = byte(0);
  const std::size_t left = text.size() - i;
  if (c >= 0xc2 && c <= 0xdf) {
    return left >= 2 && IsContinuation(byte(1)) ? 2 : 0;
  }
  if (c >= 0xe0 && c <= 0xef) {
    if (left < 3 || !IsContinuation(byte(1)) || !IsContinuation(byte(2))) return 0;
    if (c == 0xe0 && byte(1) < 0xa0) return 0;   // overlong
    if (c == 0xed && byte(1) >= 0xa0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (left < 4 || !IsContinuation(byte(1)) || !IsContinuation(byte(2)) ||
        !IsContinuation(byte(3))) {
      return 0;
    }
    if (c == 0xf0 && byte(1) < 0x90) return 0;   // overlong
    if (c == 0xf4 && byte(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

bool IsControl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

constexpr char kHexDigits[] = "0123456789abcdef";

void AppendHexEscape(unsigned char c, std::string* out) {
  out->push_back('\\');
  out->push_back('x');
  out->push_back(kHexDigits[c >> 4]);
  out->push_back(kHexDigits[c & 0xf]);
}

}  // namespace

std::string_view TextProblemReason(TextProblem problem) {
  switch (problem) {
    case TextProblem::kNone:
      return "";
    case TextProblem::kInvalidUtf8:
      return "invalid UTF-8";
    case TextProblem::kControlCharacter:
      return "control character";
  }
  return "";
}

TextProblem CheckText(std::string_view text) {
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    // Fast path: eight plain ASCII bytes at a time, the common case for URLs.
    if (i + 8 <= n) {
      std::uint64_t word;
      std::memcpy(&word, text.data() + i, sizeof(word));
      if ((word & kHighBits) == 0 && !HasControlByte(word)) {
        i += 8;
        continue;
      }
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (IsControl(c)) return TextProblem::kControlCharacter;
      ++i;
      continue;
    }
    const std::size_t length = Utf8SequenceLength(text, i);
    if (length == 0) return TextProblem::kInvalidUtf8;
    i += length;
  }
  return TextProblem::kNone;
}

std::string_view TrimBlanks(std::string_view text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && (text[begin] == ' ' || text[begin] == '\t')) ++begin;
  while (end > begin && (text[end - 1] == ' ' || text[end - 1] == '\t')) --end;
  return text.substr(begin, end - begin);
}

std::string MakeExcerpt(std::string_view line) {
  const std::string_view shown = line.substr(0, kExcerptBytes);
  std::string out;
  out.reserve(shown.size() + 8);
  std::size_t i = 0;
  while (i < shown.size()) {
    const auto c = static_cast<unsigned char>(shown[i]);
    if (c == '\\') {
      out += "\\\\";
      ++i;
    } else if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
      ++i;
    } else if (c >= 0x80) {
      // A sequence cut by the excerpt's end counts as malformed and is escaped.
      const std::size_t length = Utf8SequenceLength(shown, i);
      if (length > 0) {
        out.append(shown.substr(i, length));
        i += length;
      } else {
        AppendHexEscape(c, &out);
        ++i;
      }
    } else {
      AppendHexEscape(c, &out);
      ++i;
    }
  }
  if (line.size() > shown.size()) out += "...";
  return out;
}

void AppendJsonString(std::string_view text, std::string* out) {
  out->push_back('"');
  std::size_t run_start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(text.substr(run_start, i - run_start));
    run_start = i + 1;
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\r':
        *out += "\\r";
        break;
      default:
        *out += "\\u00";
        out->push_back(kHexDigits[c >> 4]);
        out->push_back(kHexDigits[c & 0xf]);
        break;
    }
  }
  out->append(text.substr(run_start));
  out->push_back('"');
}

void AppendJsonMember(std::string_view name, std::string_view value, std::string* json) {
  json->push_back(json->empty() ? '{' : ',');
  AppendJsonString(name, json);
  json->push_back(':');
  AppendJsonString(value, json);
}

void CloseJsonObject(std::string* json) {
  if (!json->empty()) json->push_back('}');
}

}  // namespace sluice
