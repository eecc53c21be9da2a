#include "src/input/ingest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "src/input/fake_store_test_util.h"
#include "src/input/fingerprint.h"
#include "src/input/input_files_test_util.h"
#include "src/input/line_text.h"

namespace sluice {
namespace {

using ::sluice::testing::FakeStore;
using ::sluice::testing::GzipCompress;
using ::sluice::testing::NumberedUrls;
using ::sluice::testing::RandomBytes;
using ::sluice::testing::SplitLines;
using ::sluice::testing::TempDir;
using ::sluice::testing::ZstdCompress;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

MATCHER_P2(RejectAt, line, reason, "") {
  return arg.line == line && arg.reason == reason;
}

std::vector<std::size_t> CallSizes(const FakeStore& store) {
  std::vector<std::size_t> sizes;
  for (const auto& call : store.calls()) sizes.push_back(call.items);
  return sizes;
}

IngestOptions Batches(std::uint32_t batch_size) {
  IngestOptions options;
  options.batch_size = batch_size;
  return options;
}

InputFingerprint FingerprintOf(const std::string& path) {
  auto file = FileSource::Open(path);
  EXPECT_TRUE(file.ok());
  auto fingerprint = FingerprintFile(**file, path);
  EXPECT_TRUE(fingerprint.ok());
  return *fingerprint;
}

// What decompressing `compressed` yields before its error.
std::string DecodablePrefix(const std::string& compressed) {
  auto source = OpenDecompressor(DetectCompression(compressed),
                                 std::make_unique<MemorySource>(compressed));
  std::string out;
  std::string buffer(1 << 16, '\0');
  while (true) {
    auto n = source->Read(std::span<char>(buffer));
    if (!n.ok() || *n == 0) return out;
    out.append(buffer.data(), *n);
  }
}

class IngestTest : public ::testing::Test {
 protected:
  Result<IngestReport> Ingest(const std::string& path,
                              const IngestOptions& options = {}) {
    return IngestFile(store_, path, options);
  }

  TempDir dir_;
  FakeStore store_;
};

TEST_F(IngestTest, TextFileBecomesItemsInFullBatches) {
  const std::string content = NumberedUrls(2500);
  const std::string path = dir_.Write("urls.txt", content);
  IngestOptions options = Batches(1000);
  options.groups = {"download", "faces"};
  auto report = Ingest(path, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->path, path);
  EXPECT_FALSE(report->already_ingested);
  EXPECT_FALSE(report->resumed);
  EXPECT_EQ(report->lines, 2500u);
  EXPECT_EQ(report->items, 2500u);
  EXPECT_EQ(report->rejected, 0u);
  EXPECT_EQ(store_.urls(), SplitLines(content));
  EXPECT_THAT(CallSizes(store_), ElementsAre(1000u, 1000u, 500u));
  const auto calls = store_.calls();
  EXPECT_EQ(calls[0].lines_done, 1000u);
  EXPECT_EQ(calls[2].lines_done, 2500u);
  EXPECT_EQ(calls[0].batch_size, 1000u);
  EXPECT_THAT(calls[0].groups, ElementsAre("download", "faces"));
  ASSERT_EQ(store_.inputs().size(), 1u);
  EXPECT_TRUE(store_.inputs()[0].state.complete);
  EXPECT_EQ(store_.inputs()[0].state.lines_done, 2500u);
  EXPECT_EQ(store_.inputs()[0].finish_calls, 1);
}

TEST_F(IngestTest, BatchesHoldExactlyBatchSizeItemsWhateverLiesBetween) {
  std::string content;
  std::vector<std::string> urls;
  for (int i = 0; i < 1000; ++i) {
    const std::string url = "http://a/" + std::to_string(i);
    urls.push_back(url);
    content += url + "\n";
    if (i % 7 == 0) content += "\n";
    if (i % 11 == 0) content += "bad\x01line\n";
  }
  const std::string path = dir_.Write("urls.txt", content);
  auto report = Ingest(path, Batches(64));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(store_.urls(), urls);
  const auto calls = store_.calls();
  ASSERT_EQ(calls.size(), 16u);  // 15 * 64 + 40
  for (std::size_t i = 0; i + 1 < calls.size(); ++i) EXPECT_EQ(calls[i].items, 64u) << i;
  EXPECT_EQ(calls.back().items, 1000u - 15 * 64);
  // Every call records the line of its last item (or the end): a resume point.
  const std::vector<std::string> lines = SplitLines(content);
  for (std::size_t i = 0; i + 1 < calls.size(); ++i) {
    EXPECT_EQ(lines[calls[i].lines_done - 1], urls[64 * (i + 1) - 1]);
  }
  EXPECT_EQ(report->rejected, 91u);
  EXPECT_EQ(store_.rejects().size(), 91u);
  EXPECT_EQ(report->blank, 143u);
  EXPECT_EQ(report->lines, lines.size());
}

TEST_F(IngestTest, ProgressIsReportedAfterEachAppend) {
  const std::string path = dir_.Write("urls.txt", NumberedUrls(250));
  std::vector<std::uint64_t> seen;
  auto report = IngestFile(store_, path, Batches(100), [&](const IngestReport& progress) {
    seen.push_back(progress.items);
  });
  ASSERT_TRUE(report.ok());
  EXPECT_THAT(seen, ElementsAre(100u, 200u, 250u));
}

TEST_F(IngestTest, CompressionIsRecognisedByContentNotName) {
  const std::string content = NumberedUrls(3000);
  const std::string gzip_path = dir_.Write("gzip.txt", GzipCompress(content));
  const std::string zstd_path = dir_.Write("zstd.data", ZstdCompress(content));
  const std::string plain_path = dir_.Write("plain.txt.gz", NumberedUrls(10, 5000));
  for (const std::string& path : {gzip_path, zstd_path}) {
    FakeStore store;
    auto report = IngestFile(store, path, Batches(1000));
    ASSERT_TRUE(report.ok()) << path << ": " << report.status().ToString();
    EXPECT_EQ(report->items, 3000u);
    EXPECT_EQ(store.urls(), SplitLines(content)) << path;
  }
  auto report = Ingest(plain_path);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(store_.urls(), SplitLines(NumberedUrls(10, 5000)));
}

TEST_F(IngestTest, ConcatenatedGzipMembersAreOneInput) {
  const std::string a = NumberedUrls(1500);
  const std::string b = NumberedUrls(700, 1500);
  const std::string path =
      dir_.Write("urls.txt.gz", GzipCompress(a) + GzipCompress(b, 9));
  auto report = Ingest(path, Batches(1000));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(store_.urls(), SplitLines(a + b));
  EXPECT_THAT(CallSizes(store_), ElementsAre(1000u, 1000u, 200u));
}

TEST_F(IngestTest, CrlfAndBlankLines) {
  const std::string path =
      dir_.Write("urls.txt", "http://a/1\r\n\r\n   \r\nhttp://a/2\r\n\nhttp://a/3");
  auto report = Ingest(path);
  ASSERT_TRUE(report.ok());
  EXPECT_THAT(store_.urls(), ElementsAre("http://a/1", "http://a/2", "http://a/3"));
  EXPECT_EQ(report->blank, 3u);
  EXPECT_EQ(report->lines, 6u);
  EXPECT_EQ(report->rejected, 0u);
}

TEST_F(IngestTest, EmptyFileIsZeroItemsNotAnError) {
  for (const char* name : {"empty.txt", "empty.csv", "empty.jsonl"}) {
    FakeStore store;
    const std::string path = dir_.Write(name, "");
    auto report = IngestFile(store, path, {});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->items, 0u);
    EXPECT_EQ(report->lines, 0u);
    EXPECT_TRUE(store.calls().empty());
    ASSERT_EQ(store.inputs().size(), 1u);
    EXPECT_TRUE(store.inputs()[0].state.complete);
  }
}

TEST_F(IngestTest, BinaryGarbageBecomesRejects) {
  for (const char* name : {"garbage.txt", "garbage.jsonl"}) {
    FakeStore store;
    const std::string path = dir_.Write(name, RandomBytes(1 << 20, 42));
    auto report = IngestFile(store, path, {});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_GT(report->rejected, 1000u);
    EXPECT_EQ(report->items + report->rejected + report->blank, report->lines);
    const auto rejects = store.rejects();
    EXPECT_EQ(rejects.size(), report->rejected);
    for (const RejectedLine& reject : rejects) {
      ASSERT_EQ(CheckText(reject.excerpt), TextProblem::kNone) << reject.excerpt;
    }
    for (const ItemRow& item : store.items()) {
      ASSERT_EQ(CheckText(item.url), TextProblem::kNone);
      ASSERT_FALSE(item.url.empty());
    }
  }
}

TEST_F(IngestTest, GarbageBehindACompressionMagicIsAnErrorNotACrash) {
  const std::string path =
      dir_.Write("urls.txt", std::string("\x1f\x8b", 2) + RandomBytes(100000, 9));
  auto report = Ingest(path);
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), StartsWith("input " + path + ": line 1: gzip"));
}

TEST_F(IngestTest, MegabyteLineIsRejectedWithItsNumberAndNeighboursIngested) {
  const std::string path =
      dir_.Write("urls.txt", "http://a/1\nhttp://a/2\n" + std::string(1 << 20, 'x') +
                                 "\nhttp://a/3\n");
  auto report = Ingest(path);
  ASSERT_TRUE(report.ok());
  EXPECT_THAT(store_.urls(), ElementsAre("http://a/1", "http://a/2", "http://a/3"));
  EXPECT_THAT(store_.rejects(),
              ElementsAre(RejectAt(3u, "line longer than 65536 bytes")));
  EXPECT_EQ(store_.rejects()[0].excerpt, std::string(80, 'x') + "...");
}

TEST_F(IngestTest, MaxLineBytesOptionSetsTheLimit) {
  IngestOptions options;
  options.max_line_bytes = 20;
  const std::string path =
      dir_.Write("urls.txt", "http://a/1\nhttp://a/this-is-too-long\n");
  auto report = Ingest(path, options);
  ASSERT_TRUE(report.ok());
  EXPECT_THAT(store_.urls(), ElementsAre("http://a/1"));
  EXPECT_THAT(store_.rejects(), ElementsAre(RejectAt(2u, "line longer than 20 bytes")));
}

TEST_F(IngestTest, InvalidUtf8IsRejected) {
  const std::string path =
      dir_.Write("urls.txt", "http://a/1\nhttp://a/\xc3\x28\nhttp://a/caf\xc3\xa9\n");
  auto report = Ingest(path);
  ASSERT_TRUE(report.ok());
  EXPECT_THAT(store_.urls(), ElementsAre("http://a/1", "http://a/caf\xc3\xa9"));
  ASSERT_THAT(store_.rejects(), ElementsAre(RejectAt(2u, "invalid UTF-8")));
  EXPECT_EQ(store_.rejects()[0].excerpt, "http://a/\\xc3(");
}

TEST_F(IngestTest, CsvWithoutTheUrlColumnIsAClearError) {
  const std::string path = dir_.Write("photos.csv", "link,caption\nhttp://a/1,a cat\n");
  auto report = Ingest(path);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(report.status().message(),
            "input " + path +
                ": no column named 'url' in the header (columns: link, caption); set "
                "input.url_column");
  EXPECT_TRUE(store_.items().empty());
  EXPECT_FALSE(store_.inputs()[0].state.complete);
}

TEST_F(IngestTest, CsvColumnsAndQuotedNewlineLineNumbers) {
  const std::string path =
      dir_.Write("photos.csv.gz", GzipCompress("url,caption\n"
                                               "http://a/1,\"a\ncat\"\n"
                                               "http://a/2\n"
                                               "http://a/3,\"a \"\"dog\"\"\"\n"));
  auto report = Ingest(path);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const auto items = store_.items();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].url, "http://a/1");
  EXPECT_EQ(items[0].columns_json, R"({"caption":"a\ncat"})");
  EXPECT_EQ(items[1].columns_json, R"({"caption":"a \"dog\""})");
  EXPECT_THAT(store_.rejects(), ElementsAre(RejectAt(4u, "expected 2 fields, found 1")));
  EXPECT_EQ(report->lines, 5u);
}

TEST_F(IngestTest, TsvAndJsonlByExtension) {
  const std::string tsv = dir_.Write("a.tsv", "caption\turl\na cat\thttp://a/1\n");
  const std::string jsonl = dir_.Write(
      "b.jsonl.zst",
      ZstdCompress("{\"url\":\"http://b/"
                   "1\",\"w\":640}\n{\"url\":1}\n[]\n{\"url\":\"http://b/2\"}\n"));
  ASSERT_TRUE(Ingest(tsv).ok());
  auto report = Ingest(jsonl);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const auto items = store_.items();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].url, "http://a/1");
  EXPECT_EQ(items[0].columns_json, R"({"caption":"a cat"})");
  EXPECT_EQ(items[1].url, "http://b/1");
  EXPECT_EQ(items[1].columns_json, R"({"w":"640"})");
  EXPECT_EQ(items[2].url, "http://b/2");
  EXPECT_THAT(store_.rejects(), ElementsAre(RejectAt(2u, "member 'url' is not a string"),
                                            RejectAt(3u, "not a JSON object")));
}

TEST_F(IngestTest, FormatOptionOverridesTheExtension) {
  const std::string path = dir_.Write("list.txt", "url,x\nhttp://a/1,y\n");
  IngestOptions options;
  options.format = "csv";
  ASSERT_TRUE(Ingest(path, options).ok());
  EXPECT_THAT(store_.urls(), ElementsAre("http://a/1"));
}

TEST_F(IngestTest, TruncatedGzipKeepsTheBatchesBeforeAndNothingAfter) {
  const std::string content = NumberedUrls(100000);
  const std::string compressed = GzipCompress(content);
  const std::string truncated = compressed.substr(0, compressed.size() / 2);
  const std::string path = dir_.Write("urls.txt.gz", truncated);
  auto report = Ingest(path, Batches(1000));
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kCorruption);
  const std::string prefix = DecodablePrefix(truncated);
  const std::size_t complete_lines =
      static_cast<std::size_t>(std::count(prefix.begin(), prefix.end(), '\n'));
  EXPECT_EQ(report.status().message(),
            "input " + path + ": line " + std::to_string(complete_lines + 1) +
                ": gzip stream is corrupt after " + std::to_string(prefix.size()) +
                " decompressed bytes: unexpected end of file");
  const std::vector<std::string> urls = store_.urls();
  EXPECT_EQ(urls.size() % 1000, 0u);
  EXPECT_EQ(urls.size(), complete_lines / 1000 * 1000);
  const std::vector<std::string> expected = SplitLines(content);
  EXPECT_TRUE(std::equal(urls.begin(), urls.end(), expected.begin()));
  EXPECT_FALSE(store_.inputs()[0].state.complete);
  EXPECT_EQ(store_.inputs()[0].state.lines_done, urls.size());
}

TEST_F(IngestTest, CorruptZstdFrameKeepsWhatCameBefore) {
  std::string frames;
  for (std::size_t i = 0; i < 4; ++i)
    frames += ZstdCompress(NumberedUrls(10000, 10000 * i));
  const std::string first_two =
      ZstdCompress(NumberedUrls(10000)) + ZstdCompress(NumberedUrls(10000, 10000));
  frames[first_two.size()] = 'X';  // the third frame's magic number
  const std::string path = dir_.Write("urls.txt.zst", frames);
  auto report = Ingest(path, Batches(1000));
  ASSERT_FALSE(report.ok());
  const std::string before = NumberedUrls(10000) + NumberedUrls(10000, 10000);
  const std::size_t decoded = before.size();
  EXPECT_EQ(report.status().message(),
            "input " + path + ": line 20001: zstd stream is corrupt after " +
                std::to_string(decoded) +
                " decompressed bytes: Unknown frame descriptor");
  EXPECT_EQ(store_.urls(), SplitLines(before));
  EXPECT_FALSE(store_.inputs()[0].state.complete);
}

TEST_F(IngestTest, ResumeSkipsTheLinesAnEarlierRunCommitted) {
  std::string content;
  for (int i = 0; i < 100; ++i) content += "http://a/" + std::to_string(i) + "\n\n";
  const std::string path = dir_.Write("urls.txt.gz", GzipCompress(content));
  store_.SeedInput(FingerprintOf(path), /*lines_done=*/61);  // up to item 30, on line 61
  auto report = Ingest(path, Batches(8));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->resumed);
  EXPECT_EQ(report->skipped_lines, 61u);
  EXPECT_EQ(report->lines, 200u - 61u);
  EXPECT_EQ(report->items, 69u);
  const std::vector<std::string> urls = store_.urls();
  ASSERT_EQ(urls.size(), 69u);
  EXPECT_EQ(urls.front(), "http://a/31");
  EXPECT_EQ(urls.back(), "http://a/99");
  EXPECT_EQ(store_.calls().front().items, 8u);
  EXPECT_TRUE(store_.inputs()[0].state.complete);
  EXPECT_EQ(store_.inputs()[0].state.lines_done, 200u);
}

TEST_F(IngestTest, ResumePastTheEndOfTheFileIsAnError) {
  const std::string path = dir_.Write("urls.txt", NumberedUrls(10));
  store_.SeedInput(FingerprintOf(path), /*lines_done=*/11);
  auto report = Ingest(path);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(report.status().message(), HasSubstr("11 lines were ingested"));
}

// A crash in the middle of an ingest, then a second run: the store ends up with what a
// single run gives, item for item and id for id (ids are positions in the fake).
TEST_F(IngestTest, CrashThenResumeGivesWhatOnePassGives) {
  std::string csv = "url,caption\n";
  for (int i = 0; i < 3000; ++i) {
    csv += "http://a/" + std::to_string(i) + ",\"caption " + std::to_string(i) +
           (i % 10 == 0 ? "\nover two lines\"\n" : "\"\n");
    if (i % 17 == 0) csv += "not,enough,fields,here\n";
    if (i % 19 == 0) csv += "\n";
  }
  for (const bool compressed : {false, true}) {
    const std::string path = dir_.Write(compressed ? "p.csv.gz" : "p.csv",
                                        compressed ? GzipCompress(csv) : csv);
    FakeStore one_pass;
    ASSERT_TRUE(IngestFile(one_pass, path, Batches(100)).ok());

    FakeStore crashed;
    crashed.fail_append_at = 13;
    auto first = IngestFile(crashed, path, Batches(100));
    ASSERT_FALSE(first.ok());
    EXPECT_THAT(first.status().message(), HasSubstr("injected failure"));
    EXPECT_EQ(crashed.items().size(), 1200u);
    auto second = IngestFile(crashed, path, Batches(100));
    ASSERT_TRUE(second.ok()) << second.status().ToString();
    EXPECT_TRUE(second->resumed);
    EXPECT_EQ(second->items, 1800u);

    const auto want = one_pass.items();
    const auto got = crashed.items();
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(got[i].url, want[i].url) << "id " << i;
      ASSERT_EQ(got[i].columns_json, want[i].columns_json) << "id " << i;
    }
    const auto want_rejects = one_pass.rejects();
    const auto got_rejects = crashed.rejects();
    ASSERT_EQ(got_rejects.size(), want_rejects.size());
    for (std::size_t i = 0; i < want_rejects.size(); ++i) {
      EXPECT_EQ(got_rejects[i].line, want_rejects[i].line);
    }
    const auto calls = crashed.calls();
    for (std::size_t i = 0; i + 1 < calls.size(); ++i) {
      EXPECT_EQ(calls[i].items, 100u) << i;
    }
  }
}

TEST_F(IngestTest, ACompleteInputIsNotIngestedAgainUnderAnyName) {
  const std::string content = NumberedUrls(1500);
  const std::string path = dir_.Write("urls.txt", content);
  ASSERT_TRUE(Ingest(path).ok());
  const std::size_t calls = store_.calls().size();
  for (const std::string& again : {path, dir_.Write("copy.txt", content)}) {
    auto report = Ingest(again);
    ASSERT_TRUE(report.ok());
    EXPECT_TRUE(report->already_ingested);
    EXPECT_EQ(report->items, 0u);
    EXPECT_EQ(report->skipped_lines, 1500u);
  }
  EXPECT_EQ(store_.calls().size(), calls);
  EXPECT_EQ(store_.urls().size(), 1500u);
}

TEST_F(IngestTest, ManyRejectsDoNotPileUpInMemory) {
  std::string content = "http://a/1\n";
  for (std::size_t i = 0; i < 2 * kMaxPendingRejects + 10; ++i) content += "\x01\n";
  content += "http://a/2\n";
  const std::string path = dir_.Write("urls.txt", content);
  auto report = Ingest(path, Batches(1000));
  ASSERT_TRUE(report.ok());
  EXPECT_THAT(store_.urls(), ElementsAre("http://a/1", "http://a/2"));
  EXPECT_EQ(store_.rejects().size(), 2 * kMaxPendingRejects + 10);
  for (const auto& call : store_.calls()) EXPECT_LE(call.rejects, kMaxPendingRejects);
  // lines_done stays a correct resume point for every call.
  EXPECT_EQ(store_.calls()[0].items, 1u);
  EXPECT_EQ(store_.calls()[0].lines_done, 1u + kMaxPendingRejects);
}

TEST_F(IngestTest, MissingFileSaysSo) {
  const std::string path = dir_.path() + "/x.txt";
  auto report = Ingest(path);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(report.status().message(),
            "input " + path + ": cannot open: No such file or directory");
  EXPECT_EQ(store_.begin_calls(), 0);
}

TEST_F(IngestTest, InvalidOptionsAreRefusedBeforeAnythingIsRead) {
  const std::string path = dir_.Write("urls.txt", "http://a/1\n");
  IngestOptions zero_batch = Batches(0);
  IngestOptions no_groups;
  no_groups.groups.clear();
  IngestOptions bad_format;
  bad_format.format = "xml";
  IngestOptions huge_lines;
  huge_lines.max_line_bytes = kMaxLineBytesLimit + 1;
  for (const IngestOptions& options : {zero_batch, no_groups, bad_format, huge_lines}) {
    auto report = Ingest(path, options);
    ASSERT_FALSE(report.ok());
    EXPECT_EQ(report.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(report.status().message(), StartsWith("input " + path + ": "));
  }
  EXPECT_EQ(store_.begin_calls(), 0);
}

}  // namespace
}  // namespace sluice
