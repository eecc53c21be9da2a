#include "src/stages/python_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace sluice {
namespace {

using std::literals::string_view_literals::operator""sv;

std::string Json(std::string_view text) {
  std::string out;
  AppendJsonString(text, out);
  return out;
}

TEST(PythonTextTest, FloatReprIsShortestRoundTripInPythonsNotation) {
  // Each pair: a double and Python 3.11's repr() of it.
  const std::pair<double, const char*> cases[] = {
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {2.0, "2.0"},
      {1.5, "1.5"},
      {0.1, "0.1"},
      {static_cast<double>(0.1f), "0.10000000149011612"},
      {1.0 / 3.0, "0.3333333333333333"},
      {0.0001, "0.0001"},
      {0.00012345, "0.00012345"},
      {0.00001, "1e-05"},
      {-1.5e-7, "-1.5e-07"},
      {123456789.0, "123456789.0"},
      {1234567890123456.0, "1234567890123456.0"},
      {1e16, "1e+16"},
      {12345678901234567.0, "1.2345678901234568e+16"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {5e-324, "5e-324"},
      {2.2250738585072014e-308, "2.2250738585072014e-308"},
      {std::numeric_limits<double>::infinity(), "inf"},
      {-std::numeric_limits<double>::infinity(), "-inf"},
      {std::nan(""), "nan"},
      {-std::nan(""), "nan"},
  };
  for (const auto& [value, repr] : cases) EXPECT_EQ(PythonFloatRepr(value), repr) << repr;
}

TEST(PythonTextTest, BytesReprQuotesAndEscapesAsPython) {
  EXPECT_EQ(PythonBytesRepr(""), "b''");
  EXPECT_EQ(PythonBytesRepr("abc"), "b'abc'");
  EXPECT_EQ(PythonBytesRepr("it's"), "b\"it's\"");
  EXPECT_EQ(PythonBytesRepr("'\""), "b'\\'\"'");
  EXPECT_EQ(PythonBytesRepr("\\ \t\n\r \x7f\xff"sv), "b'\\\\ \\t\\n\\r \\x7f\\xff'");
  EXPECT_EQ(PythonBytesRepr("\0\x01\x1f"sv), "b'\\x00\\x01\\x1f'");
}

TEST(PythonTextTest, CharReprQuotesAndEscapesAsPython) {
  EXPECT_EQ(PythonCharRepr('a'), "'a'");
  EXPECT_EQ(PythonCharRepr('\''), "\"'\"");
  EXPECT_EQ(PythonCharRepr('"'), "'\"'");
  EXPECT_EQ(PythonCharRepr('\\'), "'\\\\'");
  EXPECT_EQ(PythonCharRepr('\n'), "'\\n'");
  EXPECT_EQ(PythonCharRepr(0x01), "'\\x01'");
  EXPECT_EQ(PythonCharRepr(0x7F), "'\\x7f'");
  EXPECT_EQ(PythonCharRepr(0x85), "'\\x85'");
  EXPECT_EQ(PythonCharRepr(0xA0), "'\\xa0'");
  EXPECT_EQ(PythonCharRepr(0xAD), "'\\xad'");
  EXPECT_EQ(PythonCharRepr(0xE9), "'\xC3\xA9'");
  EXPECT_EQ(PythonCharRepr(0x4E2D), "'\xE4\xB8\xAD'");
}

TEST(PythonTextTest, StrictUtf8RejectsWhatPythonsDecoderRejects) {
  EXPECT_TRUE(IsStrictUtf8(""));
  EXPECT_TRUE(IsStrictUtf8("ascii \x01\x7f"));
  EXPECT_TRUE(IsStrictUtf8("caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"));
  EXPECT_TRUE(IsStrictUtf8("\xEF\xBF\xBD"));  // U+FFFD itself
  for (const char* bad : {"\x80", "\xC3", "\xC0\xAF", "\xC1\xBF", "\xE0\x80\xAF",
                          "\xED\xA0\x80", "\xF0\x80\x80\xAF", "\xF4\x90\x80\x80",
                          "\xF5\x80\x80\x80", "\xFF", "a\xE4\xB8", "\xE4\xB8z"}) {
    EXPECT_FALSE(IsStrictUtf8(bad)) << bad;
  }
}

TEST(PythonTextTest, DecodeAndEncodeUtf8) {
  const std::u32string code_points = DecodeUtf8("a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80");
  EXPECT_EQ(code_points, (std::u32string{U'a', 0xE9, 0x4E2D, 0x1F600}));
  std::string out;
  for (const char32_t c : code_points) AppendUtf8(c, out);
  EXPECT_EQ(out, "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80");
  // A bad byte is read as U+FFFD, one byte long.
  EXPECT_EQ(DecodeUtf8("\xFF"
                       "a"),
            (std::u32string{0xFFFD, U'a'}));
}

TEST(PythonTextTest, StripRemovesPythonsWhitespace) {
  EXPECT_EQ(PythonStrip(""), "");
  EXPECT_EQ(PythonStrip(" \t\n\v\f\r"), "");
  EXPECT_EQ(PythonStrip("  a b  "), "a b");
  // U+001C..U+001F, U+0085, U+00A0, U+2028 and U+3000 are spaces to Python; NUL and
  // U+200B are not.
  EXPECT_EQ(PythonStrip("\x1C\x1F\xC2\x85\xC2\xA0x\xE2\x80\xA8\xE3\x80\x80"), "x");
  EXPECT_EQ(PythonStrip("\0x\0"sv), "\0x\0"sv);
  EXPECT_EQ(PythonStrip("\xE2\x80\x8Bx"), "\xE2\x80\x8Bx");
}

TEST(PythonTextTest, JsonStringIsJsonDumpsWithEnsureAscii) {
  EXPECT_EQ(Json(""), "\"\"");
  EXPECT_EQ(Json("plain ~ text/"), "\"plain ~ text/\"");
  EXPECT_EQ(Json("\"\\\n\r\t\b\f"), "\"\\\"\\\\\\n\\r\\t\\b\\f\"");
  EXPECT_EQ(Json("\0\x01\x1f\x7f"sv), "\"\\u0000\\u0001\\u001f\\u007f\"");
  EXPECT_EQ(Json("\xC3\xA9\xE4\xB8\xAD\xEF\xBF\xBF"), "\"\\u00e9\\u4e2d\\uffff\"");
  EXPECT_EQ(Json("\xF0\x9F\x98\x80"), "\"\\ud83d\\ude00\"");
}

}  // namespace
}  // namespace sluice
