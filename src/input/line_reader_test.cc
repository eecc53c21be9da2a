#include "src/input/line_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "src/input/input_files_test_util.h"

namespace sluice {
namespace {

using ::sluice::testing::FailingSource;
using ::sluice::testing::PiecewiseSource;
using ::testing::ElementsAre;

struct SeenLine {
  std::string text;
  std::uint64_t number;
  bool too_long;
  bool operator==(const SeenLine&) const = default;
};

std::ostream& operator<<(std::ostream& os, const SeenLine& line) {
  return os << line.number << ":" << (line.too_long ? "LONG:" : "") << line.text;
}

std::vector<SeenLine> ReadLines(std::string data, std::size_t max_line_bytes = 65536,
                                std::size_t piece = 1 << 20) {
  LineReader reader(std::make_unique<PiecewiseSource>(std::move(data), piece),
                    max_line_bytes);
  std::vector<SeenLine> lines;
  LineReader::Line line;
  while (true) {
    auto more = reader.Next(&line);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    lines.push_back({std::string(line.text), line.number, line.too_long});
  }
  return lines;
}

TEST(LineReaderTest, SplitsOnNewlinesAndDropsCarriageReturns) {
  EXPECT_THAT(ReadLines("a\r\nbb\n\nccc"),
              ElementsAre(SeenLine{"a", 1, false}, SeenLine{"bb", 2, false},
                          SeenLine{"", 3, false}, SeenLine{"ccc", 4, false}));
}

TEST(LineReaderTest, EmptyInputHasNoLines) { EXPECT_TRUE(ReadLines("").empty()); }

TEST(LineReaderTest, AFinalNewlineDoesNotMakeAnEmptyLine) {
  EXPECT_THAT(ReadLines("a\n"), ElementsAre(SeenLine{"a", 1, false}));
  EXPECT_THAT(ReadLines("\n"), ElementsAre(SeenLine{"", 1, false}));
}

TEST(LineReaderTest, OnlyOneTrailingCarriageReturnIsDropped) {
  EXPECT_THAT(ReadLines("a\r\r\nb\rc\n"),
              ElementsAre(SeenLine{"a\r", 1, false}, SeenLine{"b\rc", 2, false}));
}

TEST(LineReaderTest, DropsAByteOrderMarkOnTheFirstLineOnly) {
  EXPECT_THAT(
      ReadLines("\xef\xbb\xbfurl\n\xef\xbb\xbfx\n"),
      ElementsAre(SeenLine{"url", 1, false}, SeenLine{"\xef\xbb\xbfx", 2, false}));
}

TEST(LineReaderTest, LineOfExactlyTheLimitIsKeptOneMoreIsTooLong) {
  const std::string limit(100, 'x');
  EXPECT_THAT(
      ReadLines(limit + "\n" + limit + "\r\n" + limit + "y\n" + limit + "y", 100),
      ElementsAre(SeenLine{limit, 1, false}, SeenLine{limit, 2, false},
                  SeenLine{limit + "y", 3, true}, SeenLine{limit + "y", 4, true}));
}

TEST(LineReaderTest, LongLinesAreSkippedInConstantMemoryWithTheirNeighbours) {
  // 3 MiB lines against a 1 MiB buffer, fed in odd-sized pieces.
  const std::string huge = std::string(3 << 20, 'h') + "tail";
  const std::string prefix(LineReader::kLongLinePrefixBytes, 'h');
  for (const std::size_t piece : {std::size_t{4093}, std::size_t{1} << 20}) {
    EXPECT_THAT(ReadLines("first\n" + huge + "\nmiddle\n" + huge + "\r\nlast\n" + huge,
                          65536, piece),
                ElementsAre(SeenLine{"first", 1, false}, SeenLine{prefix, 2, true},
                            SeenLine{"middle", 3, false}, SeenLine{prefix, 4, true},
                            SeenLine{"last", 5, false}, SeenLine{prefix, 6, true}));
  }
}

// Found by tests/fuzz/input_lines_fuzzer.cc, which reads every input whole and in
// small pieces: a too-long line's prefix was what the first read had brought of it,
// its final "\r" stayed in when the whole line fitted in the prefix, and the first
// line's byte order mark counted against the limit.
TEST(LineReaderTest, TooLongLinesAreTheSameWhateverTheReadSizes) {
  const std::string data = "\xef\xbb\xbf" + std::string(10, 'b') + "\n" +
                           std::string(12, 'c') + "\r\n" + std::string(200, 'd') + "\n" +
                           std::string(11, 'e');
  const std::vector<SeenLine> expected = {
      {std::string(10, 'b'), 1, false},
      {std::string(12, 'c'), 2, true},
      {std::string(LineReader::kLongLinePrefixBytes, 'd'), 3, true},
      {std::string(11, 'e'), 4, true}};
  for (const std::size_t piece : {1, 3, 5, 13, 1 << 20}) {
    EXPECT_EQ(ReadLines(data, 10, piece), expected) << "piece " << piece;
  }
}

TEST(LineReaderTest, LinesStraddlingBufferBoundariesComeOutWhole) {
  std::string data;
  std::vector<SeenLine> expected;
  for (int i = 0; i < 40000; ++i) {
    std::string text(static_cast<std::size_t>(i % 97), static_cast<char>('a' + i % 26));
    data += text + (i % 3 == 0 ? "\r\n" : "\n");
    expected.push_back({text, static_cast<std::uint64_t>(i + 1), false});
  }
  EXPECT_EQ(ReadLines(data, 65536, 777), expected);
}

TEST(LineReaderTest, SkipCountsLinesWithoutLookingAtThem) {
  const std::string huge(3 << 20, 'h');
  LineReader reader(std::make_unique<PiecewiseSource>("a\n" + huge + "\nb\nc\nd", 5000),
                    10);
  auto skipped = reader.Skip(3);
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(*skipped, 3u);
  EXPECT_EQ(reader.lines_read(), 3u);
  LineReader::Line line;
  ASSERT_TRUE(*reader.Next(&line));
  EXPECT_EQ(line.text, "c");
  EXPECT_EQ(line.number, 4u);
  skipped = reader.Skip(10);
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(*skipped, 1u);  // "d", which has no newline
  EXPECT_EQ(reader.lines_read(), 5u);
  EXPECT_FALSE(*reader.Next(&line));
}

TEST(LineReaderTest, SkipCountsALastLineWithoutNewlineThatSpansBuffers) {
  const std::string huge(3 << 20, 'h');
  LineReader reader(std::make_unique<PiecewiseSource>("a\n" + huge, 1 << 20), 10);
  auto skipped = reader.Skip(5);
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(*skipped, 2u);
}

TEST(LineReaderTest, SkipMatchesNextLineForLine) {
  std::string data;
  for (int i = 0; i < 5000; ++i) {
    data += std::string(static_cast<std::size_t>(i % 13), 'x') + "\n";
  }
  data += "last";
  for (const std::uint64_t count : {0u, 1u, 2499u, 5000u, 5001u}) {
    LineReader reader(std::make_unique<PiecewiseSource>(data, 101), 100);
    auto skipped = reader.Skip(count);
    ASSERT_TRUE(skipped.ok());
    EXPECT_EQ(*skipped, std::min<std::uint64_t>(count, 5001));
    LineReader::Line line;
    auto more = reader.Next(&line);
    ASSERT_TRUE(more.ok());
    EXPECT_EQ(*more, count < 5001);
    if (*more) {
      EXPECT_EQ(line.number, count + 1);
    }
  }
}

TEST(LineReaderTest, SourceErrorsNameTheLineBeingRead) {
  LineReader reader(std::make_unique<FailingSource>("a\nb\npartial",
                                                    Corruption("gzip stream is corrupt")),
                    100);
  LineReader::Line line;
  ASSERT_TRUE(*reader.Next(&line));
  ASSERT_TRUE(*reader.Next(&line));
  auto more = reader.Next(&line);
  ASSERT_FALSE(more.ok());
  EXPECT_EQ(more.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(more.status().message(), "line 3: gzip stream is corrupt");
}

}  // namespace
}  // namespace sluice
