#include "src/input/json_line.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "src/input/line_text.h"

namespace sluice {
namespace {

struct Outcome {
  std::string reason;  // "" when parsed
  std::string url;
  std::string columns_json;
};

Outcome Parse(std::string_view line, std::string url_member = "url") {
  JsonLineParser parser(std::move(url_member));
  ItemRow item;
  Outcome outcome;
  outcome.reason = std::string(parser.Parse(line, &item));
  outcome.url = item.url;
  outcome.columns_json = item.columns_json;
  return outcome;
}

TEST(JsonLineParserTest, TakesTheUrlAndKeepsOtherMembersAsText) {
  const Outcome outcome = Parse(
      R"( { "id" : 12345678901234567890123 , "url" : " http://a/1 " , "caption" : "caf\u00e9 \"x\"\n",)"
      R"( "ok" : true, "no": false, "n" : null, "f": -1.50e+3, "tags" : [ "x" , 1 , { } , [ ] ],)"
      R"( "meta" : { "k" : [ 1 , "\u00e9" ] } } )");
  ASSERT_EQ(outcome.reason, "");
  EXPECT_EQ(outcome.url, "http://a/1");
  EXPECT_EQ(outcome.columns_json,
            R"({"id":"12345678901234567890123","caption":"café \"x\"\n","ok":"true",)"
            R"("no":"false","n":"null","f":"-1.50e+3","tags":"[\"x\",1,{},[]]",)"
            R"("meta":"{\"k\":[1,\"\\u00e9\"]}"})");
  // What it builds is JSON, and says what the line said.
  const auto columns = nlohmann::json::parse(outcome.columns_json);
  EXPECT_EQ(columns["caption"], "café \"x\"\n");
  EXPECT_EQ(nlohmann::json::parse(columns["meta"].get<std::string>())["k"][1], "é");
}

TEST(JsonLineParserTest, UrlOnlyMeansNoColumns) {
  EXPECT_EQ(Parse(R"({"url":"http://a/1"})").columns_json, "");
  EXPECT_EQ(Parse(R"({"link":"http://a/1","url":"x"})", "link").columns_json,
            R"({"url":"x"})");
}

TEST(JsonLineParserTest, DecodesEscapesInTheUrl) {
  EXPECT_EQ(Parse(R"({"url":"http:\/\/a\/\u00e9\ud83d\ude00"})").url,
            "http://a/\xc3\xa9\xf0\x9f\x98\x80");
}

TEST(JsonLineParserTest, ReasonsForLinesThatAreNotItems) {
  const std::pair<std::string, std::string> cases[] = {
      {R"("http://a/1")", "not a JSON object"},
      {R"([{"url":"http://a/1"}])", "not a JSON object"},
      {"42", "not a JSON object"},
      {"nul", "invalid JSON"},
      {R"({"url":"http://a/1"} x)", "invalid JSON"},
      {R"({"url":"http://a/1",})", "invalid JSON"},
      {R"({"url":"http://a/1")", "invalid JSON"},
      {R"({"url" "http://a/1"})", "invalid JSON"},
      {R"({url:"http://a/1"})", "invalid JSON"},
      {"{\"url\":\"http://a/\t1\"}", "invalid JSON"},  // raw tab in a string
      {R"({"url":"http://a/1","n":01})", "invalid JSON"},
      {R"({"url":"http://a/1","n":1.})", "invalid JSON"},
      {R"({"url":"http://a/1","n":-})", "invalid JSON"},
      {R"({"url":"http://a/1","n":tru})", "invalid JSON"},
      {R"({"url":"\ud800"})", "invalid JSON"},
      {R"({"url":"\udc00"})", "invalid JSON"},
      {R"({"url":"\ud800\u0041"})", "invalid JSON"},
      {R"({"url":"\x"})", "invalid JSON"},
      {R"({"url":"\u12"})", "invalid JSON"},
      {R"({"url":42})", "member 'url' is not a string"},
      {R"({"url":null})", "member 'url' is not a string"},
      {R"({"url":["http://a/1"]})", "member 'url' is not a string"},
      {R"({"url":"http://a/1","url":"http://a/2"})", "duplicate member 'url'"},
      {R"({"link":"http://a/1"})", "no member 'url'"},
      {R"({})", "no member 'url'"},
      {R"({"url":"  "})", "empty URL"},
      {R"({"url":"http://a/\u0000"})", "control character"},
      {R"({"url":"http://a/\n"})", "control character"},
  };
  for (const auto& [line, reason] : cases) EXPECT_EQ(Parse(line).reason, reason) << line;
}

TEST(JsonLineParserTest, NestingIsLimited) {
  const auto nested = [](int depth) {
    return R"({"url":"http://a/1","x":)" +
           std::string(static_cast<std::size_t>(depth), '[') +
           std::string(static_cast<std::size_t>(depth), ']') + "}";
  };
  EXPECT_EQ(Parse(nested(kMaxJsonDepth - 1)).reason, "");
  EXPECT_EQ(Parse(nested(kMaxJsonDepth)).reason, "JSON nested too deeply");
  EXPECT_EQ(Parse(std::string(100000, '[')).reason, "JSON nested too deeply");
  EXPECT_EQ(Parse(std::string(100000, '{')).reason, "invalid JSON");
}

TEST(JsonLineParserTest, ReusedParserStartsAfreshEachLine) {
  JsonLineParser parser("url");
  ItemRow item;
  EXPECT_EQ(parser.Parse(R"({"url":"http://a/1","c":"x"})", &item), "");
  EXPECT_EQ(parser.Parse(R"({"url":"http://a/2"})", &item), "");
  EXPECT_EQ(item.url, "http://a/2");
  EXPECT_EQ(item.columns_json, "");
}

// Valid JSON per nlohmann is valid here, and the other way round; values agree.
TEST(JsonLineParserTest, AgreesWithNlohmannOnMutatedLines) {
  const std::vector<std::string> seeds = {
      R"({"url":"http://a/1","caption":"a \"cat\" \\ \/ \b\f\n\r\t \u00e9\ud83d\ude00","w":640})",
      R"({"url": "http://a/2", "tags": [1, -2.5e-3, true, false, null, {"k": [[], {}]}]})",
      R"({ "n" : 0 , "url" : "x" , "e" : 1E+2 , "s" : "" })",
  };
  const std::string alphabet = "{}[]\":,\\ \t0123456789.eE+-tfnrulasxu";
  std::mt19937_64 random(7);
  int checked = 0;
  for (int round = 0; round < 30000; ++round) {
    std::string line = seeds[random() % seeds.size()];
    const int edits = 1 + static_cast<int>(random() % 3);
    for (int e = 0; e < edits && !line.empty(); ++e) {
      const std::size_t at = random() % line.size();
      switch (random() % 3) {
        case 0:
          line.erase(at, 1);
          break;
        case 1:
          line.insert(at, 1, alphabet[random() % alphabet.size()]);
          break;
        default:
          line[at] = alphabet[random() % alphabet.size()];
          break;
      }
    }
    if (CheckText(line) != TextProblem::kNone) continue;
    const Outcome mine = Parse(line);
    bool nlohmann_valid = true;
    try {
      const auto parsed = nlohmann::json::parse(line);
      EXPECT_FALSE(parsed.is_discarded());
    } catch (const nlohmann::json::exception& error) {
      // Numbers beyond a double's range are valid JSON that nlohmann refuses; here
      // they keep their digits.
      if (std::string_view(error.what()).find("number overflow") !=
          std::string_view::npos) {
        continue;
      }
      nlohmann_valid = false;
    }
    const bool mine_valid = mine.reason != "invalid JSON";
    ASSERT_EQ(mine_valid, nlohmann_valid) << line << " -> " << mine.reason;
    if (!mine.reason.empty()) continue;
    ++checked;
    const auto doc = nlohmann::ordered_json::parse(line);
    ASSERT_EQ(std::string(TrimBlanks(doc["url"].get<std::string>())), mine.url) << line;
    const auto columns = mine.columns_json.empty()
                             ? nlohmann::ordered_json::object()
                             : nlohmann::ordered_json::parse(mine.columns_json);
    for (const auto& [name, value] : doc.items()) {
      if (name == "url") continue;
      ASSERT_TRUE(columns.contains(name)) << line;
      const std::string text = columns[name].get<std::string>();
      if (value.is_string()) {
        ASSERT_EQ(text, value.get<std::string>()) << line;
      } else {
        ASSERT_EQ(nlohmann::json::parse(text), nlohmann::json(value)) << line;
      }
    }
  }
  EXPECT_GT(checked, 1000);
}

}  // namespace
}  // namespace sluice
