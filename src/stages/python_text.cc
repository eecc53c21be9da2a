#include "src/stages/python_text.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>

namespace sluice {
namespace {

constexpr char32_t kReplacement = 0xFFFD;
constexpr char kHex[] = "0123456789abcdef";

bool IsContinuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

// The code point at text[pos] and its encoded length; U+FFFD and 1 for a byte that
// does not start a well-formed sequence.
char32_t DecodeAt(std::string_view text, std::size_t pos, std::size_t& length) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char first = byte(pos);
  length = 1;
  if (first < 0x80) return first;
  std::size_t size = 0;
  char32_t code_point = 0;
  // The range the second byte must be in: narrower after E0, ED, F0 and F4, which
  // would otherwise start overlong forms, surrogates or code points over U+10FFFF.
  unsigned char low = 0x80, high = 0xBF;
  if (first >= 0xC2 && first <= 0xDF) {
    size = 2;
    code_point = first & 0x1F;
  } else if (first >= 0xE0 && first <= 0xEF) {
    size = 3;
    code_point = first & 0x0F;
    if (first == 0xE0) low = 0xA0;
    if (first == 0xED) high = 0x9F;
  } else if (first >= 0xF0 && first <= 0xF4) {
    size = 4;
    code_point = first & 0x07;
    if (first == 0xF0) low = 0x90;
    if (first == 0xF4) high = 0x8F;
  } else {
    return kReplacement;
  }
  if (text.size() - pos < size) return kReplacement;
  if (byte(pos + 1) < low || byte(pos + 1) > high) return kReplacement;
  for (std::size_t i = 1; i < size; ++i) {
    if (!IsContinuation(byte(pos + i))) return kReplacement;
    code_point = (code_point << 6) | (byte(pos + i) & 0x3F);
  }
  length = size;
  return code_point;
}

// str.isspace().
bool IsPythonSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

void AppendHexEscape(char prefix, char32_t value, int digits, std::string& out) {
  out += '\\';
  out += prefix;
  for (int shift = 4 * (digits - 1); shift >= 0; shift -= 4) {
    out += kHex[(value >> shift) & 0xF];
  }
}

}  // namespace

std::string PythonFloatRepr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  // The shortest round-trip digits, as d.ddde[+-]XX (0 is "0e+00").
  char buffer[64];
  const auto result =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
  std::string_view text(buffer, static_cast<std::size_t>(result.ptr - buffer));
  std::string out;
  if (text.front() == '-') {
    out += '-';
    text.remove_prefix(1);
  }
  const std::size_t e = text.find('e');
  std::string digits(1, text[0]);
  if (e > 1) digits += text.substr(2, e - 2);
  int exponent = 0;
  std::from_chars(text.data() + e + (text[e + 1] == '+' ? 2 : 1),
                  text.data() + text.size(), exponent);
  // Python's rule: the decimal point `point` digits from the left (value =
  // 0.DIGITS x 10^point), fixed notation when -4 < point <= 16.
  const int point = exponent + 1;
  const int count = static_cast<int>(digits.size());
  if (point > -4 && point <= 16) {
    if (point <= 0) {
      out += "0.";
      out.append(static_cast<std::size_t>(-point), '0');
      out += digits;
    } else if (point >= count) {
      out += digits;
      out.append(static_cast<std::size_t>(point - count), '0');
      out += ".0";
    } else {
      out.append(digits, 0, static_cast<std::size_t>(point));
      out += '.';
      out.append(digits, static_cast<std::size_t>(point));
    }
    return out;
  }
  out += digits[0];
  if (count > 1) {
    out += '.';
    out.append(digits, 1);
  }
  out += exponent < 0 ? "e-" : "e+";
  const int magnitude = std::abs(exponent);
  if (magnitude < 10) out += '0';
  out += std::to_string(magnitude);
  return out;
}

std::string PythonBytesRepr(std::string_view bytes) {
  const bool double_quotes = bytes.find('\'') != std::string_view::npos &&
                             bytes.find('"') == std::string_view::npos;
  const char quote = double_quotes ? '"' : '\'';
  std::string out = "b";
  out += quote;
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (byte < 0x20 || byte >= 0x7F) {
      AppendHexEscape('x', byte, 2, out);
    } else {
      out += c;
    }
  }
  out += quote;
  return out;
}

std::string PythonCharRepr(char32_t code_point) {
  if (code_point == '\'') return "\"'\"";
  std::string out = "'";
  if (code_point == '\\') {
    out += "\\\\";
  } else if (code_point == '\t') {
    out += "\\t";
  } else if (code_point == '\n') {
    out += "\\n";
  } else if (code_point == '\r') {
    out += "\\r";
  } else if (code_point < 0x20 || (code_point >= 0x7F && code_point <= 0xA0) ||
             code_point == 0xAD) {
    // Controls, U+00A0 (a space other than ' ') and the soft hyphen (a format
    // character) are the Latin-1 characters Python does not print.
    AppendHexEscape('x', code_point, 2, out);
  } else {
    AppendUtf8(code_point, out);
  }
  out += '\'';
  return out;
}

bool IsStrictUtf8(std::string_view bytes) {
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    std::size_t length = 0;
    const char32_t code_point = DecodeAt(bytes, pos, length);
    // A well-formed U+FFFD is 3 bytes long; the replacement for a bad byte is 1.
    if (code_point == kReplacement && length == 1) return false;
    pos += length;
  }
  return true;
}

void AppendUtf8(char32_t code_point, std::string& out) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xE0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}

std::u32string DecodeUtf8(std::string_view text) {
  std::u32string code_points;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t length = 0;
    code_points += DecodeAt(text, pos, length);
    pos += length;
  }
  return code_points;
}

std::string_view PythonStrip(std::string_view text) {
  std::size_t begin = text.size();  // of the first character that is not a space
  std::size_t end = 0;              // after the last one
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t length = 0;
    const char32_t code_point = DecodeAt(text, pos, length);
    if (!IsPythonSpace(code_point)) {
      if (begin == text.size()) begin = pos;
      end = pos + length;
    }
    pos += length;
  }
  return begin < end ? text.substr(begin, end - begin) : std::string_view();
}

void AppendJsonString(std::string_view text, std::string& out) {
  out += '"';
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t length = 0;
    const char32_t c = DecodeAt(text, pos, length);
    pos += length;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c >= 0x20 && c < 0x7F) {
          out += static_cast<char>(c);
        } else if (c < 0x10000) {
          AppendHexEscape('u', c, 4, out);
        } else {
          const char32_t offset = c - 0x10000;
          AppendHexEscape('u', 0xD800 + (offset >> 10), 4, out);
          AppendHexEscape('u', 0xDC00 + (offset & 0x3FF), 4, out);
        }
    }
  }
  out += '"';
}

}  // namespace sluice
