#include "src/core/expr.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Record Item() {
  Record record(7, "https://user@Images.Example.org:8443/a/cat.JPG?size=2");
  record.AddColumn("caption", "a cat on a mat");
  record.Set("width", std::int64_t{640});
  record.Set("ratio", 1.5);
  record.Set("content_type", std::string("image/jpeg"));
  record.Set("animated", false);
  record.Set("pixels", Bytes{1, 2, 3});
  return record;
}

bool Holds(std::string_view text, const Record& record = Item()) {
  Result<Expr> expr = Expr::Parse(text);
  EXPECT_TRUE(expr.ok()) << text << ": " << expr.ToStatus().ToString();
  return expr.ok() && expr->Test(record);
}

std::string ParseError(std::string_view text) {
  Result<Expr> expr = Expr::Parse(text);
  EXPECT_FALSE(expr.ok()) << text;
  return expr.ok() ? std::string() : expr.ToStatus().message();
}

TEST(ExprTest, ComparesNumbersStringsAndBooleans) {
  EXPECT_TRUE(Holds("width == 640"));
  EXPECT_TRUE(Holds("width >= 640 && width < 641.5"));
  EXPECT_FALSE(Holds("width > 640"));
  EXPECT_TRUE(Holds("ratio > 1 && ratio <= 1.5"));
  EXPECT_TRUE(Holds("width != 2e3"));
  EXPECT_TRUE(Holds("content_type == 'image/jpeg'"));
  EXPECT_TRUE(Holds("content_type < \"image/png\""));  // bytewise
  EXPECT_TRUE(Holds("animated == false"));
  EXPECT_FALSE(Holds("animated < true"));  // booleans have no order
  EXPECT_TRUE(Holds("-1 < 0"));
}

TEST(ExprTest, MissingValuesAndOtherKindsCompareFalse) {
  EXPECT_FALSE(Holds("height == 480"));
  EXPECT_FALSE(Holds("height != 480"));
  EXPECT_TRUE(Holds("!has(height)"));
  EXPECT_FALSE(Holds("width == '640'"));  // a number is not a string
  EXPECT_FALSE(Holds("pixels == ''"));    // bytes are not a value here
  EXPECT_TRUE(Holds("has(pixels)"));
  EXPECT_FALSE(Holds("height"));
}

TEST(ExprTest, LogicShortCircuitsAndNests) {
  EXPECT_TRUE(Holds("width == 1 || width == 640"));
  EXPECT_FALSE(Holds("!(width == 640)"));
  EXPECT_TRUE(Holds("!!width"));
  EXPECT_TRUE(Holds("(width == 1 || ratio == 1.5) && !animated"));
  EXPECT_TRUE(Holds("true && !false"));
}

TEST(ExprTest, ColumnsUrlAndHost) {
  EXPECT_TRUE(Holds("contains(caption, 'cat')"));
  EXPECT_TRUE(Holds("host == 'Images.Example.org'"));
  EXPECT_TRUE(Holds("starts_with(url, 'https://')"));
  EXPECT_TRUE(Holds("ends_with(url, '?size=2')"));
  EXPECT_TRUE(Holds("matches(url, '(?i)\\\\.jpe?g')"));
  EXPECT_FALSE(Holds("matches(url, '^http:')"));
  EXPECT_TRUE(Holds("len(caption) == 14"));
  // A field named like the built-ins wins over them.
  Record record = Item();
  record.Set("host", std::string("mirror"));
  EXPECT_TRUE(Holds("host == 'mirror'", record));
}

TEST(ExprTest, UrlHosts) {
  EXPECT_EQ(UrlHost("http://a.b/c"), "a.b");
  EXPECT_EQ(UrlHost("http://u:p@a.b:81?x"), "a.b");
  EXPECT_EQ(UrlHost("http://[::1]:8080/x"), "[::1]");
  EXPECT_EQ(UrlHost("no scheme"), "");
  EXPECT_EQ(UrlHost("http://"), "");
}

TEST(ExprTest, FieldsReadAreListedOnce) {
  Result<Expr> expr = Expr::Parse("width > 1 && has(ratio) && width < 9 && host == 'x'");
  ASSERT_TRUE(expr.ok());
  EXPECT_THAT(expr->fields(), ElementsAre("width", "ratio"));
  EXPECT_EQ(expr->text(), "width > 1 && has(ratio) && width < 9 && host == 'x'");
}

TEST(ExprTest, ErrorsNameTheColumn) {
  EXPECT_THAT(ParseError("width = 3"), HasSubstr("column 7: '=' is not an operator"));
  EXPECT_THAT(ParseError("width > "), HasSubstr("column 9: expected a value, found the end"));
  EXPECT_THAT(ParseError("(width > 1"), HasSubstr("column 11: expected ')'"));
  EXPECT_THAT(ParseError("size(url)"), HasSubstr("column 1: unknown function 'size'"));
  EXPECT_THAT(ParseError("contains(url)"),
              HasSubstr("column 1: contains() takes 2 arguments, not 1"));
  EXPECT_THAT(ParseError("matches(url, '(')"), HasSubstr("column 14: not a regex"));
  EXPECT_THAT(ParseError("matches(url, caption)"),
              HasSubstr("column 14: matches() takes its regex as a string literal"));
  EXPECT_THAT(ParseError("'open"), HasSubstr("column 1: string not closed"));
  EXPECT_THAT(ParseError("'a\\qb'"), HasSubstr("column 3: unknown escape '\\q'"));
  EXPECT_THAT(ParseError("1 < 2 < 3"), HasSubstr("column 7: comparisons do not chain"));
  EXPECT_THAT(ParseError("1.2.3 > 0"), HasSubstr("column 1: '1.2.3' is not a number"));
  EXPECT_THAT(ParseError("width # 2"), HasSubstr("column 7: unexpected character '#'"));
  EXPECT_THAT(ParseError("width 2"), HasSubstr("column 7: unexpected text after"));
  EXPECT_THAT(ParseError(""), HasSubstr("column 1: expected a value"));
  EXPECT_THAT(ParseError("has('x')"), HasSubstr("has() takes a field name"));
  EXPECT_THAT(ParseError(std::string(200, '(') + "1" + std::string(200, ')')),
              HasSubstr("nested too deeply"));
  EXPECT_THAT(ParseError(std::string(200, '!') + "1"), HasSubstr("nested too deeply"));
  std::string chain = "1";
  while (chain.size() <= Expr::kMaxLength) chain += " && 1";
  EXPECT_THAT(ParseError(chain), HasSubstr("at most 4096"));
  chain.resize(Expr::kMaxLength - 5);
  EXPECT_TRUE(Holds(chain.substr(0, chain.rfind(" &&"))));
}

TEST(ExprTest, AParsedExpressionMovesAndStaysValid) {
  Result<Expr> parsed = Expr::Parse("content_type == 'image/jpeg' && matches(url, 'cat')");
  ASSERT_TRUE(parsed.ok());
  Expr moved = std::move(parsed).value();
  std::vector<Expr> many;
  many.push_back(std::move(moved));
  for (int i = 0; i < 10; ++i) many.push_back(Expr::Parse("width > 0").value());
  EXPECT_TRUE(many.front().Test(Item()));
}

}  // namespace
}  // namespace sluice
