#include "src/input/line_text.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace sluice {
namespace {

TEST(CheckTextTest, AcceptsAsciiTabsAndWellFormedUtf8) {
  EXPECT_EQ(CheckText(""), TextProblem::kNone);
  EXPECT_EQ(CheckText("https://example.com/a?b=c&d=e#f"), TextProblem::kNone);
  EXPECT_EQ(CheckText("a\tb"), TextProblem::kNone);
  EXPECT_EQ(
      CheckText("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"),
      TextProblem::kNone);
  EXPECT_EQ(CheckText("\xee\x80\x80\xef\xbf\xbd"), TextProblem::kNone);  // U+E000, U+FFFD
}

TEST(CheckTextTest, RejectsControlCharacters) {
  for (const char c : {'\0', '\x01', '\r', '\n', '\x1b', '\x1f', '\x7f'}) {
    // At every offset, so that both the 8-byte fast path and the tail see it.
    for (std::size_t at = 0; at < 20; ++at) {
      std::string text(20, 'a');
      text[at] = c;
      EXPECT_EQ(CheckText(text), TextProblem::kControlCharacter)
          << "byte " << int{c} << " at " << at;
    }
  }
}

TEST(CheckTextTest, RejectsMalformedUtf8) {
  const char* const bad[] = {
      "\x80",              // lone continuation byte
      "\xc0\xaf",          // overlong '/'
      "\xc1\xbf",          // overlong
      "\xe0\x80\xaf",      // overlong
      "\xed\xa0\x80",      // surrogate U+D800
      "\xf0\x80\x80\xaf",  // overlong
      "\xf4\x90\x80\x80",  // above U+10FFFF
      "\xf5\x80\x80\x80",  // invalid lead byte
      "\xff",              // never valid
      "\xc3",              // cut short at the end
      "\xe6\x97",          // cut short at the end
      "\xc3(",             // bad continuation
  };
  for (const char* text : bad) {
    for (const std::string& padded :
         {std::string(text), "abcdefghij" + std::string(text) + "klmnopqrst"}) {
      EXPECT_EQ(CheckText(padded), TextProblem::kInvalidUtf8) << padded;
    }
  }
  EXPECT_EQ(TextProblemReason(TextProblem::kInvalidUtf8), "invalid UTF-8");
  EXPECT_EQ(TextProblemReason(TextProblem::kControlCharacter), "control character");
}

TEST(TrimBlanksTest, TrimsSpacesAndTabsOnly) {
  EXPECT_EQ(TrimBlanks(" \t http://a \t"), "http://a");
  EXPECT_EQ(TrimBlanks(" \t "), "");
  EXPECT_EQ(TrimBlanks("a b"), "a b");
  EXPECT_EQ(TrimBlanks("\xc2\xa0x"), "\xc2\xa0x");
}

TEST(MakeExcerptTest, EscapesWhatIsNotPrintable) {
  EXPECT_EQ(MakeExcerpt("plain text"), "plain text");
  EXPECT_EQ(MakeExcerpt(std::string("a\0b\tc\x7f\\d", 8)), "a\\x00b\\x09c\\x7f\\\\d");
  EXPECT_EQ(MakeExcerpt("caf\xc3\xa9\xff"), "caf\xc3\xa9\\xff");
}

TEST(MakeExcerptTest, ShowsTheFirstBytesOnly) {
  const std::string line(200, 'x');
  EXPECT_EQ(MakeExcerpt(line), std::string(kExcerptBytes, 'x') + "...");
  EXPECT_EQ(MakeExcerpt(std::string(kExcerptBytes, 'x')),
            std::string(kExcerptBytes, 'x'));
  // A multi-byte character cut by the limit is escaped, not split.
  const std::string cut = std::string(kExcerptBytes - 1, 'x') + "\xc3\xa9";
  EXPECT_EQ(MakeExcerpt(cut), std::string(kExcerptBytes - 1, 'x') + "\\xc3...");
}

TEST(JsonTest, BuildsAnObjectOfStringsThatParsesBack) {
  std::string json;
  CloseJsonObject(&json);
  EXPECT_EQ(json, "");
  const std::string tricky = std::string("q\" b\\ n\n t\t r\r nul\0 e\x1b \xc3\xa9", 25);
  AppendJsonMember("caption", "a cat", &json);
  AppendJsonMember("we\"ird", tricky, &json);
  CloseJsonObject(&json);
  EXPECT_EQ(json.substr(0, 22), R"({"caption":"a cat","we)");
  const auto parsed = nlohmann::ordered_json::parse(json);
  EXPECT_EQ(parsed.dump(),
            R"({"caption":"a cat","we\"ird":"q\" b\\ n\n t\t r\r nul\u0000 e\u001b é"})");
  EXPECT_EQ(parsed["we\"ird"].get<std::string>(), tricky);
}

}  // namespace
}  // namespace sluice
