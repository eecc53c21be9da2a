#include "src/input/input_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "src/input/input_files_test_util.h"
#include "src/input/line_text.h"

namespace sluice {
namespace {

using ::sluice::testing::PiecewiseSource;
using ::sluice::testing::RandomBytes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Everything a parser produced, in order.
struct Parsed {
  std::vector<std::pair<std::string, std::string>> items;  // url, columns_json
  std::vector<RejectedLine> rejects;
  std::uint64_t blank = 0;
  std::uint64_t lines = 0;
  Status error;
};

Parsed Parse(InputFormat format, std::string data, std::string url_column = "url",
             std::size_t max_line_bytes = 65536, std::uint64_t skip = 0,
             std::size_t piece = 1 << 20) {
  LineReader reader(std::make_unique<PiecewiseSource>(std::move(data), piece),
                    max_line_bytes);
  auto parser = MakeInputParser(format, std::move(url_column), &reader);
  Parsed parsed;
  if (skip > 0) {
    auto skipped = parser->SkipLines(skip);
    if (!skipped.ok()) {
      parsed.error = skipped.status();
      return parsed;
    }
  }
  ItemRow item;
  RejectedLine reject;
  while (true) {
    auto kind = parser->Next(&item, &reject);
    if (!kind.ok()) {
      parsed.error = kind.status();
      break;
    }
    if (*kind == EntryKind::kEnd) break;
    if (*kind == EntryKind::kItem) parsed.items.emplace_back(item.url, item.columns_json);
    if (*kind == EntryKind::kRejected) parsed.rejects.push_back(reject);
    if (*kind == EntryKind::kBlank) ++parsed.blank;
  }
  parsed.lines = parser->lines_consumed();
  return parsed;
}

using Item = std::pair<std::string, std::string>;

MATCHER_P2(RejectAt, line, reason, "") {
  return arg.line == line && arg.reason == reason;
}

TEST(ResolveInputFormatTest, AutoGoesByExtensionAfterCompressionSuffixes) {
  const std::pair<const char*, InputFormat> cases[] = {
      {"urls.txt", InputFormat::kText},       {"urls", InputFormat::kText},
      {"dir.csv/urls", InputFormat::kText},   {"a.csv", InputFormat::kCsv},
      {"a.CSV.GZ", InputFormat::kCsv},        {"a.tsv.zst", InputFormat::kTsv},
      {"a.jsonl.zstd", InputFormat::kJsonl},  {"a.ndjson", InputFormat::kJsonl},
      {"a.json", InputFormat::kJsonl},        {"a.gz", InputFormat::kText},
      {"/x/y/photos.csv", InputFormat::kCsv},
  };
  for (const auto& [path, format] : cases) {
    auto resolved = ResolveInputFormat("auto", path);
    ASSERT_TRUE(resolved.ok());
    EXPECT_EQ(*resolved, format) << path;
  }
  EXPECT_EQ(*ResolveInputFormat("csv", "a.txt"), InputFormat::kCsv);
  EXPECT_EQ(*ResolveInputFormat("text", "a.csv"), InputFormat::kText);
  auto bad = ResolveInputFormat("xml", "a.xml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("unknown input format 'xml'"));
}

TEST(TextFormatTest, OneTrimmedUrlPerLine) {
  const Parsed parsed =
      Parse(InputFormat::kText, "  http://a/1 \n\n \t \nhttp://a/2\t\r\nhttp://a/3");
  ASSERT_TRUE(parsed.error.ok());
  EXPECT_THAT(parsed.items, ElementsAre(Item{"http://a/1", ""}, Item{"http://a/2", ""},
                                        Item{"http://a/3", ""}));
  EXPECT_EQ(parsed.blank, 2u);
  EXPECT_TRUE(parsed.rejects.empty());
  EXPECT_EQ(parsed.lines, 5u);
}

TEST(TextFormatTest, RejectsBadTextWithLineNumbersAndExcerpts) {
  using namespace std::string_literals;
  const Parsed parsed =
      Parse(InputFormat::kText,
            "http://ok/1\nhttp://bad\xff/\nnul\0here\nhttp://ok/2\nx\x1b[31m\n"s);
  EXPECT_THAT(parsed.items,
              ElementsAre(Item{"http://ok/1", ""}, Item{"http://ok/2", ""}));
  ASSERT_THAT(parsed.rejects, ElementsAre(RejectAt(2u, "invalid UTF-8"),
                                          RejectAt(3u, "control character"),
                                          RejectAt(5u, "control character")));
  EXPECT_EQ(parsed.rejects[0].excerpt, "http://bad\\xff/");
  EXPECT_EQ(parsed.rejects[1].excerpt, "nul\\x00here");
}

TEST(TextFormatTest, TooLongLineIsRejectedAndItsNeighboursKept) {
  const Parsed parsed = Parse(
      InputFormat::kText, "http://a/1\n" + std::string(1 << 20, 'x') + "\nhttp://a/2\n");
  EXPECT_THAT(parsed.items, ElementsAre(Item{"http://a/1", ""}, Item{"http://a/2", ""}));
  ASSERT_THAT(parsed.rejects, ElementsAre(RejectAt(2u, "line longer than 65536 bytes")));
  EXPECT_EQ(parsed.rejects[0].excerpt, std::string(kExcerptBytes, 'x') + "...");
}

TEST(CsvFormatTest, UrlColumnByNameOtherColumnsKeptInHeaderOrder) {
  const Parsed parsed = Parse(InputFormat::kCsv,
                              "caption,url,width\r\n"
                              "a cat,http://a/1,640\r\n"
                              "\"a \"\"quoted\"\", comma\",  http://a/2 ,\r\n");
  ASSERT_TRUE(parsed.error.ok()) << parsed.error.ToString();
  EXPECT_THAT(
      parsed.items,
      ElementsAre(Item{"http://a/1", R"({"caption":"a cat","width":"640"})"},
                  Item{"http://a/2", R"({"caption":"a \"quoted\", comma","width":""})"}));
  EXPECT_TRUE(parsed.rejects.empty());
}

TEST(CsvFormatTest, OnlyAUrlColumnMeansNoColumns) {
  const Parsed parsed = Parse(InputFormat::kCsv, "url\nhttp://a/1\n\"http://a/2\"\n");
  EXPECT_THAT(parsed.items, ElementsAre(Item{"http://a/1", ""}, Item{"http://a/2", ""}));
}

TEST(CsvFormatTest, QuotedNewlinesKeepLineNumbersOfWhereRecordsStart) {
  const Parsed parsed = Parse(InputFormat::kCsv,
                              "url,caption\n"                              // 1
                              "http://a/1,\"two\nlines\"\n"                // 2-3
                              "http://a/2,\"three\r\n\nlines\"\n"          // 4-6
                              "http://a/3\n"                               // 7: 1 field
                              "http://a/4,\"x\"\n"                         // 8
                              ",\"empty\nurl\"\n"                          // 9-10
                              "http://a/5,\"unterminated\nto the end\n");  // 11-12
  ASSERT_TRUE(parsed.error.ok()) << parsed.error.ToString();
  EXPECT_THAT(parsed.items,
              ElementsAre(Item{"http://a/1", R"({"caption":"two\nlines"})"},
                          Item{"http://a/2", R"({"caption":"three\n\nlines"})"},
                          Item{"http://a/4", R"({"caption":"x"})"}));
  EXPECT_THAT(parsed.rejects, ElementsAre(RejectAt(7u, "expected 2 fields, found 1"),
                                          RejectAt(9u, "empty URL"),
                                          RejectAt(11u, "unterminated quoted field")));
  EXPECT_EQ(parsed.lines, 12u);
}

TEST(CsvFormatTest, MalformedQuotesAndWrongFieldCountsAreRejects) {
  const Parsed parsed = Parse(InputFormat::kCsv,
                              "url,n\n"
                              "http://a/1,\"x\"y\n"      // text after closing quote
                              "http://a/2,1,2\n"         // too many fields
                              "http://a/3,say \"hi\"\n"  // a quote inside: literal
                              "\"http://a/\n4\",1\n");   // a newline in the URL
  EXPECT_THAT(parsed.items, ElementsAre(Item{"http://a/3", R"({"n":"say \"hi\""})"}));
  EXPECT_THAT(parsed.rejects, ElementsAre(RejectAt(2u, "text after a closing quote"),
                                          RejectAt(3u, "expected 2 fields, found 3"),
                                          RejectAt(5u, "control character")));
}

TEST(CsvFormatTest, RecordGrowingPastTheLimitIsRejectedAndParsingGoesOn) {
  std::string data = "url,caption\nhttp://a/1,\"never closed\n";
  for (int i = 0; i < 20; ++i) data += "0123456789\n";
  data += "http://a/2,ok\n";
  const Parsed parsed = Parse(InputFormat::kCsv, data, "url", 100);
  ASSERT_FALSE(parsed.rejects.empty());
  EXPECT_THAT(parsed.rejects[0], RejectAt(2u, "record longer than 100 bytes"));
  // Parsing starts again after the line that went past the limit (line 9): the
  // digit lines after it are records of one field.
  ASSERT_EQ(parsed.rejects.size(), 1u + 13u);
  EXPECT_THAT(parsed.rejects[1], RejectAt(10u, "expected 2 fields, found 1"));
  EXPECT_THAT(parsed.items, ElementsAre(Item{"http://a/2", R"({"caption":"ok"})"}));
}

TEST(CsvFormatTest, HeaderWithoutTheUrlColumnIsAnErrorNamingTheColumns) {
  const Parsed parsed = Parse(InputFormat::kCsv, "link,caption\nhttp://a/1,x\n");
  EXPECT_EQ(parsed.error.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parsed.error.message(),
            "no column named 'url' in the header (columns: link, caption); set "
            "input.url_column");
  EXPECT_TRUE(parsed.items.empty());
}

TEST(CsvFormatTest, UrlColumnOptionPicksTheColumn) {
  const Parsed parsed = Parse(InputFormat::kCsv, "link,caption\nhttp://a/1,x\n", "link");
  EXPECT_THAT(parsed.items, ElementsAre(Item{"http://a/1", R"({"caption":"x"})"}));
}

TEST(CsvFormatTest, DuplicateOrUnreadableHeaderIsAnError) {
  EXPECT_EQ(Parse(InputFormat::kCsv, "url,a,a\n").error.message(),
            "column 'a' appears twice in the header");
  EXPECT_THAT(Parse(InputFormat::kCsv, "u\xffrl\n").error.message(),
              HasSubstr("header (line 1): invalid UTF-8"));
}

TEST(CsvFormatTest, EmptyFileBlankLinesAndHeaderOnlyHaveNoItems) {
  for (const char* data : {"", "\n\n", "url,caption\n", "\xef\xbb\xbfurl\r\n\r\n"}) {
    const Parsed parsed = Parse(InputFormat::kCsv, data);
    EXPECT_TRUE(parsed.error.ok()) << data;
    EXPECT_TRUE(parsed.items.empty()) << data;
    EXPECT_TRUE(parsed.rejects.empty()) << data;
  }
  const Parsed blanks = Parse(InputFormat::kCsv, "\n\nurl\n\nhttp://a/1\n  \n");
  EXPECT_EQ(blanks.blank, 4u);
  EXPECT_EQ(blanks.items.size(), 1u);
}

TEST(CsvFormatTest, ByteOrderMarkBeforeTheHeaderIsIgnored) {
  const Parsed parsed = Parse(InputFormat::kCsv, "\xef\xbb\xbfurl,x\nhttp://a/1,y\n");
  ASSERT_TRUE(parsed.error.ok()) << parsed.error.ToString();
  EXPECT_THAT(parsed.items, ElementsAre(Item{"http://a/1", R"({"x":"y"})"}));
}

TEST(CsvFormatTest, SkipLinesReadsTheHeaderThenSkips) {
  const std::string data =
      "url,caption\nhttp://a/1,\"multi\nline\"\nhttp://a/2,b\nhttp://a/3,c\n";
  const Parsed parsed = Parse(InputFormat::kCsv, data, "url", 65536, /*skip=*/3);
  ASSERT_TRUE(parsed.error.ok()) << parsed.error.ToString();
  EXPECT_THAT(parsed.items, ElementsAre(Item{"http://a/2", R"({"caption":"b"})"},
                                        Item{"http://a/3", R"({"caption":"c"})"}));
}

TEST(TsvFormatTest, TabSeparatedWithoutQuoting) {
  const Parsed parsed = Parse(InputFormat::kTsv,
                              "url\tcaption\n"
                              "http://a/1\t\"quotes\" stay, commas too\n"
                              "http://a/2\n"
                              "http://a/3\tx\ty\n"
                              "\tno url\n");
  EXPECT_THAT(
      parsed.items,
      ElementsAre(Item{"http://a/1", R"({"caption":"\"quotes\" stay, commas too"})"}));
  EXPECT_THAT(parsed.rejects, ElementsAre(RejectAt(3u, "expected 2 fields, found 1"),
                                          RejectAt(4u, "expected 2 fields, found 3"),
                                          RejectAt(5u, "empty URL")));
}

TEST(JsonlFormatTest, UrlMemberAndOtherMembersAsText) {
  const Parsed parsed = Parse(
      InputFormat::kJsonl,
      R"({"id": 7, "url": " http://a/1 ", "caption": "a \"cat\"", "ok": true, "n": null, "tags": ["x", 1], "meta": {"k": 1.5}})"
      "\n"
      R"({"url":"http://a/2"})"
      "\n");
  ASSERT_TRUE(parsed.error.ok());
  EXPECT_THAT(
      parsed.items,
      ElementsAre(
          Item{
              "http://a/1",
              R"({"id":"7","caption":"a \"cat\"","ok":"true","n":"null","tags":"[\"x\",1]","meta":"{\"k\":1.5}"})"},
          Item{"http://a/2", ""}));
}

TEST(JsonlFormatTest, BadLinesAreRejectedWithAReason) {
  const Parsed parsed = Parse(InputFormat::kJsonl,
                              "{\"url\": 42}\n"
                              "[\"http://a/1\"]\n"
                              "\"http://a/1\"\n"
                              "{\"link\": \"http://a/1\"}\n"
                              "{\"url\": \"http://a/1\"\n"
                              "{\"url\": \"  \"}\n"
                              "{\"url\": \"http://a/\\u0000\"}\n"
                              "{\"url\": \"http://a/\\ud800\"}\n" +
                                  std::string(1000, '[') +
                                  "\n"
                                  "\n"
                                  "{\"url\": \"http://a/ok\"}\n");
  EXPECT_THAT(parsed.items, ElementsAre(Item{"http://a/ok", ""}));
  EXPECT_THAT(
      parsed.rejects,
      ElementsAre(RejectAt(1u, "member 'url' is not a string"),
                  RejectAt(2u, "not a JSON object"), RejectAt(3u, "not a JSON object"),
                  RejectAt(4u, "no member 'url'"), RejectAt(5u, "invalid JSON"),
                  RejectAt(6u, "empty URL"), RejectAt(7u, "control character"),
                  RejectAt(8u, "invalid JSON"), RejectAt(9u, "JSON nested too deeply")));
  EXPECT_EQ(parsed.blank, 1u);
}

TEST(JsonlFormatTest, UrlMemberOptionPicksTheMember) {
  const Parsed parsed =
      Parse(InputFormat::kJsonl, R"({"link":"http://a/1","url":"x"})", "link");
  EXPECT_THAT(parsed.items, ElementsAre(Item{"http://a/1", R"({"url":"x"})"}));
}

// Binary garbage in any format: no crash, every line accounted for.
TEST(AnyFormatTest, BinaryGarbageYieldsRejectsNotCrashes) {
  for (const InputFormat format :
       {InputFormat::kText, InputFormat::kCsv, InputFormat::kTsv, InputFormat::kJsonl}) {
    for (std::uint64_t seed = 0; seed < 5; ++seed) {
      std::string data = RandomBytes(200000, seed);
      if (format == InputFormat::kCsv || format == InputFormat::kTsv) {
        data = (format == InputFormat::kCsv ? "url,x\n" : "url\tx\n") + data;
      }
      const Parsed parsed = Parse(format, data, "url", 1000, 0, 4099);
      ASSERT_TRUE(parsed.error.ok()) << parsed.error.ToString();
      EXPECT_GT(parsed.rejects.size(), 0u);
      if (format == InputFormat::kText || format == InputFormat::kJsonl) {
        EXPECT_EQ(parsed.items.size() + parsed.rejects.size() + parsed.blank,
                  parsed.lines);
      }
      for (const RejectedLine& reject : parsed.rejects) {
        EXPECT_LE(reject.excerpt.size(), 4 * kExcerptBytes + 3);
        EXPECT_GE(reject.line, 1u);
        EXPECT_LE(reject.line, parsed.lines);
      }
    }
  }
}

}  // namespace
}  // namespace sluice
