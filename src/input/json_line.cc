#include "src/input/json_line.h"

#include <fmt/format.h>

#include <cstdint>
#include <utility>

#include "src/input/line_text.h"

namespace sluice {
namespace {

constexpr std::string_view kInvalidJson = "invalid JSON";
constexpr std::string_view kTooDeep = "JSON nested too deeply";

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(std::uint32_t code_point, std::string* out) {
  if (code_point < 0x80) {
    out->push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (code_point >> 6)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3f)));
  } else if (code_point < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (code_point >> 12)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (code_point >> 18)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3f)));
  }
}

}  // namespace

JsonLineParser::JsonLineParser(std::string url_member)
    : url_member_(std::move(url_member)),
      no_url_reason_(fmt::format("no member '{}'", url_member_)),
      url_not_string_reason_(fmt::format("member '{}' is not a string", url_member_)),
      duplicate_url_reason_(fmt::format("duplicate member '{}'", url_member_)) {}

void JsonLineParser::SkipSpace() {
  while (pos_ < text_.size()) {
    const char c = text_[pos_];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
    ++pos_;
  }
}

bool JsonLineParser::ParseString(std::string* decoded, std::string* raw) {
  const std::size_t start = pos_;
  ++pos_;  // the opening quote
  while (true) {
    const std::size_t run = pos_;
    while (pos_ < text_.size()) {
      const auto c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"' || c == '\\' || c < 0x20) break;
      ++pos_;
    }
    if (decoded != nullptr) decoded->append(text_.substr(run, pos_ - run));
    if (pos_ >= text_.size()) return false;
    const char c = text_[pos_];
    if (c == '"') {
      ++pos_;
      if (raw != nullptr) raw->append(text_.substr(start, pos_ - start));
      return true;
    }
    if (c != '\\') return false;  // a raw control character (tab included)
    if (pos_ + 1 >= text_.size()) return false;
    const char escape = text_[pos_ + 1];
    pos_ += 2;
    char simple = 0;
    switch (escape) {
      case '"':
        simple = '"';
        break;
      case '\\':
        simple = '\\';
        break;
      case '/':
        simple = '/';
        break;
      case 'b':
        simple = '\b';
        break;
      case 'f':
        simple = '\f';
        break;
      case 'n':
        simple = '\n';
        break;
      case 'r':
        simple = '\r';
        break;
      case 't':
        simple = '\t';
        break;
      case 'u':
        break;
      default:
        return false;
    }
    if (simple != 0) {
      if (decoded != nullptr) decoded->push_back(simple);
      continue;
    }
    // \uXXXX, and for a code point above U+FFFF a second one: a surrogate pair.
    const auto hex4 = [&](std::uint32_t* value) {
      if (pos_ + 4 > text_.size()) return false;
      *value = 0;
      for (int i = 0; i < 4; ++i) {
        const int digit = HexValue(text_[pos_ + static_cast<std::size_t>(i)]);
        if (digit < 0) return false;
        *value = *value * 16 + static_cast<std::uint32_t>(digit);
      }
      pos_ += 4;
      return true;
    };
    std::uint32_t code_point = 0;
    if (!hex4(&code_point)) return false;
    if (code_point >= 0xdc00 && code_point <= 0xdfff) return false;  // lone low half
    if (code_point >= 0xd800 && code_point <= 0xdbff) {
      std::uint32_t low = 0;
      if (pos_ + 2 > text_.size() || text_[pos_] != '\\' || text_[pos_ + 1] != 'u') {
        return false;
      }
      pos_ += 2;
      if (!hex4(&low) || low < 0xdc00 || low > 0xdfff) return false;
      code_point = 0x10000 + ((code_point - 0xd800) << 10) + (low - 0xdc00);
    }
    if (decoded != nullptr) AppendUtf8(code_point, decoded);
  }
}

bool JsonLineParser::ParseNumber(std::string* raw) {
  const std::size_t start = pos_;
  const auto digits = [&] {
    const std::size_t first = pos_;
    while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
    return pos_ > first;
  };
  if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
  if (pos_ < text_.size() && text_[pos_] == '0') {
    ++pos_;
  } else if (!digits()) {
    return false;
  }
  if (pos_ < text_.size() && text_[pos_] == '.') {
    ++pos_;
    if (!digits()) return false;
  }
  if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
    ++pos_;
    if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
    if (!digits()) return false;
  }
  if (raw != nullptr) raw->append(text_.substr(start, pos_ - start));
  return true;
}

bool JsonLineParser::ParseLiteral(std::string_view literal, std::string* raw) {
  if (text_.substr(pos_, literal.size()) != literal) return false;
  pos_ += literal.size();
  if (raw != nullptr) raw->append(literal);
  return true;
}

bool JsonLineParser::ParseValue(int depth, std::string* compact) {
  if (pos_ >= text_.size()) return false;
  switch (text_[pos_]) {
    case '"':
      return ParseString(nullptr, compact);
    case '{':
    case '[':
      return ParseContainer(depth, compact);
    case 't':
      return ParseLiteral("true", compact);
    case 'f':
      return ParseLiteral("false", compact);
    case 'n':
      return ParseLiteral("null", compact);
    default:
      return ParseNumber(compact);
  }
}

bool JsonLineParser::ParseContainer(int depth, std::string* compact) {
  if (depth > kMaxJsonDepth) {
    too_deep_ = true;
    return false;
  }
  const char open = text_[pos_];
  const char close = open == '{' ? '}' : ']';
  if (compact != nullptr) compact->push_back(open);
  ++pos_;
  SkipSpace();
  if (pos_ < text_.size() && text_[pos_] == close) {
    ++pos_;
    if (compact != nullptr) compact->push_back(close);
    return true;
  }
  while (true) {
    SkipSpace();
    if (open == '{') {
      if (pos_ >= text_.size() || text_[pos_] != '"') return false;
      if (!ParseString(nullptr, compact)) return false;
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != ':') return false;
      ++pos_;
      if (compact != nullptr) compact->push_back(':');
      SkipSpace();
    }
    if (!ParseValue(depth + 1, compact)) return false;
    SkipSpace();
    if (pos_ >= text_.size()) return false;
    const char c = text_[pos_++];
    if (compact != nullptr) compact->push_back(c);
    if (c == close) return true;
    if (c != ',') return false;
  }
}

std::string_view JsonLineParser::Parse(std::string_view line, ItemRow* item) {
  text_ = line;
  pos_ = 0;
  too_deep_ = false;
  SkipSpace();
  if (pos_ >= text_.size()) return kInvalidJson;
  if (text_[pos_] != '{') {
    bool valid = ParseValue(1, nullptr);
    SkipSpace();
    valid = valid && pos_ == text_.size();
    if (too_deep_) return kTooDeep;
    return valid ? std::string_view("not a JSON object") : kInvalidJson;
  }

  // The line's own object: like ParseContainer, but members are sorted out by name.
  ++pos_;
  item->url.clear();
  item->columns_json.clear();
  int url_members = 0;
  std::string_view url_problem;  // reported only if the line is valid JSON
  bool valid = true;
  SkipSpace();
  if (pos_ < text_.size() && text_[pos_] == '}') {
    ++pos_;
  } else {
    while (valid) {
      SkipSpace();
      name_.clear();
      value_.clear();
      valid = pos_ < text_.size() && text_[pos_] == '"' && ParseString(&name_, nullptr);
      if (!valid) break;
      SkipSpace();
      valid = pos_ < text_.size() && text_[pos_] == ':';
      if (!valid) break;
      ++pos_;
      SkipSpace();
      const bool is_string = pos_ < text_.size() && text_[pos_] == '"';
      valid = is_string ? ParseString(&value_, nullptr) : ParseValue(2, &value_);
      if (!valid) break;
      if (name_ == url_member_) {
        if (++url_members > 1) {
          url_problem = duplicate_url_reason_;
        } else if (!is_string) {
          url_problem = url_not_string_reason_;
        } else {
          item->url.assign(TrimBlanks(value_));
        }
      } else {
        AppendJsonMember(name_, value_, &item->columns_json);
      }
      SkipSpace();
      valid = pos_ < text_.size() && (text_[pos_] == ',' || text_[pos_] == '}');
      if (valid && text_[pos_++] == '}') break;
    }
  }
  SkipSpace();
  if (too_deep_) return kTooDeep;
  if (!valid || pos_ != text_.size()) return kInvalidJson;
  if (!url_problem.empty()) return url_problem;
  if (url_members == 0) return no_url_reason_;
  if (item->url.empty()) return "empty URL";
  // Escapes can smuggle in what the line check keeps out ("\u0000", "\n").
  if (const TextProblem problem = CheckText(item->url); problem != TextProblem::kNone) {
    return TextProblemReason(problem);
  }
  CloseJsonObject(&item->columns_json);
  return "";
}

}  // namespace sluice
