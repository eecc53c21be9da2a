#include "src/input/byte_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "src/input/input_files_test_util.h"

namespace sluice {
namespace {

using ::sluice::testing::GzipCompress;
using ::sluice::testing::NumberedUrls;
using ::sluice::testing::PiecewiseSource;
using ::sluice::testing::RandomBytes;
using ::sluice::testing::ReadAll;
using ::sluice::testing::TempDir;
using ::sluice::testing::ZstdCompress;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::unique_ptr<ByteSource> Decoded(std::string data, std::size_t piece = 1 << 20) {
  const Compression compression = DetectCompression(data);
  return OpenDecompressor(compression,
                          std::make_unique<PiecewiseSource>(std::move(data), piece));
}

TEST(DetectCompressionTest, RecognisesMagicBytesOnly) {
  EXPECT_EQ(DetectCompression(std::string_view("\x1f\x8b\x08\x00", 4)),
            Compression::kGzip);
  EXPECT_EQ(DetectCompression(std::string_view("\x28\xb5\x2f\xfd", 4)),
            Compression::kZstd);
  EXPECT_EQ(DetectCompression("http://a/"), Compression::kNone);
  EXPECT_EQ(DetectCompression(""), Compression::kNone);
  EXPECT_EQ(DetectCompression("\x1f"), Compression::kNone);
  EXPECT_EQ(DetectCompression(std::string_view("\x28\xb5\x2f", 3)), Compression::kNone);
}

TEST(FileSourceTest, ReadsAFileSequentiallyAndAtOffsets) {
  TempDir dir;
  const std::string content = NumberedUrls(50000);  // several MiB reads' worth
  const std::string path = dir.Write("urls.txt", content);
  auto file = FileSource::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ((*file)->size(), content.size());
  std::string middle(10, '\0');
  ASSERT_TRUE((*file)->ReadAt(1000, std::span<char>(middle)).ok());
  EXPECT_EQ(middle, content.substr(1000, 10));
  auto all = ReadAll(**file, 1 << 16);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, content);
}

TEST(FileSourceTest, MissingFileIsNotFoundWithTheReason) {
  TempDir dir;
  auto file = FileSource::Open(dir.path() + "/nope.txt");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(file.status().message(), "cannot open: No such file or directory");
}

TEST(FileSourceTest, DirectoryIsNotARegularFile) {
  TempDir dir;
  auto file = FileSource::Open(dir.path());
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().message(), "not a regular file");
}

TEST(DecompressorTest, PlainPassesThrough) {
  const std::string content = "a\nb\n";
  auto source = Decoded(content);
  auto all = ReadAll(*source);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, content);
}

TEST(DecompressorTest, GzipRoundTripsWhateverTheReadSizes) {
  const std::string content = NumberedUrls(20000);
  for (const std::size_t piece : {std::size_t{1}, std::size_t{7}, std::size_t{1} << 20}) {
    for (const std::size_t chunk : {std::size_t{3}, std::size_t{1} << 20}) {
      if (piece == 1 && chunk == 3) continue;  // too slow to be worth it
      auto source = Decoded(GzipCompress(content), piece);
      auto all = ReadAll(*source, chunk);
      ASSERT_TRUE(all.ok()) << all.status().ToString();
      EXPECT_EQ(*all, content) << "piece " << piece << " chunk " << chunk;
    }
  }
}

TEST(DecompressorTest, GzipConcatenatedMembersReadAsOneStream) {
  const std::string a = NumberedUrls(1000);
  const std::string b = NumberedUrls(1000, 1000);
  const std::string empty_member = GzipCompress("");
  auto source = Decoded(GzipCompress(a) + empty_member + GzipCompress(b), 100);
  auto all = ReadAll(*source);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, a + b);
}

TEST(DecompressorTest, TruncatedGzipSaysHowFarItGot) {
  const std::string content = NumberedUrls(20000);
  const std::string compressed = GzipCompress(content);
  auto source = Decoded(compressed.substr(0, compressed.size() / 2));
  std::string got;
  std::string buffer(4096, '\0');
  Status error;
  while (true) {
    auto n = source->Read(std::span<char>(buffer));
    if (!n.ok()) {
      error = n.status();
      break;
    }
    ASSERT_NE(*n, 0u) << "a truncated stream must not end quietly";
    got.append(buffer.data(), *n);
  }
  EXPECT_EQ(error.code(), StatusCode::kCorruption);
  EXPECT_EQ(error.message(), "gzip stream is corrupt after " +
                                 std::to_string(got.size()) +
                                 " decompressed bytes: unexpected end of file");
  EXPECT_GT(got.size(), 0u);
  EXPECT_EQ(got, content.substr(0, got.size()));
  // The error sticks.
  EXPECT_FALSE(source->Read(std::span<char>(buffer)).ok());
}

TEST(DecompressorTest, CorruptGzipIsAnError) {
  std::string compressed = GzipCompress(NumberedUrls(1000));
  // The first deflate block header follows the 10-byte gzip header: 0xff makes its
  // block type 3, which does not exist.
  compressed[10] = '\xff';
  auto all = ReadAll(*Decoded(compressed));
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.status().message(),
            "gzip stream is corrupt after 0 decompressed bytes: invalid block type");
}

TEST(DecompressorTest, GzipWithTrailingGarbageIsAnError) {
  auto all = ReadAll(*Decoded(GzipCompress("a\n") + "garbage"));
  ASSERT_FALSE(all.ok());
  EXPECT_THAT(all.status().message(),
              StartsWith("gzip stream is corrupt after 2 decompressed"));
}

// Reads `source` through a buffer of `chunk` bytes until it ends or fails; returns
// the bytes and the error (ok when it ended).
std::pair<std::string, Status> ReadUntilError(ByteSource& source, std::size_t chunk) {
  std::string got;
  std::string buffer(chunk, '\0');
  while (true) {
    auto n = source.Read(std::span<char>(buffer));
    if (!n.ok()) return {got, n.status()};
    if (*n == 0) return {got, Status::Ok()};
    got.append(buffer.data(), *n);
  }
}

// Found by tests/fuzz/input_lines_fuzzer.cc: what inflate decoded in the call that
// found the stream broken was dropped, so that how much of a corrupt stream came out
// depended on the size of the reads.
TEST(DecompressorTest, GzipHandsOutWhatItDecodedBeforeABadChecksum) {
  const std::string content = NumberedUrls(100);
  std::string compressed = GzipCompress(content);
  compressed[compressed.size() - 8] ^= 1;  // the trailer's CRC-32
  for (const std::size_t chunk : {std::size_t{7}, std::size_t{1} << 20}) {
    auto source = Decoded(compressed);
    const auto [got, error] = ReadUntilError(*source, chunk);
    EXPECT_EQ(got, content) << chunk;
    EXPECT_EQ(error.message(), "gzip stream is corrupt after " +
                                   std::to_string(content.size()) +
                                   " decompressed bytes: incorrect data check");
    // The error sticks.
    char byte;
    EXPECT_FALSE(source->Read(std::span<char>(&byte, 1)).ok());
  }
}

// Found by tests/fuzz/input_lines_fuzzer.cc: a frame whose end filled a read exactly
// was taken for a truncated one by the next read (zstd, called again after a frame,
// asks for the next frame's header even when there is no more input).
TEST(DecompressorTest, ZstdFrameEndingExactlyAtTheEndOfAReadIsComplete) {
  for (const std::size_t size :
       {std::size_t{15}, std::size_t{4096}, std::size_t{70000}}) {
    const std::string content = NumberedUrls(size).substr(0, size);
    for (const std::size_t piece : {std::size_t{7}, std::size_t{1} << 20}) {
      auto one = ReadUntilError(*Decoded(ZstdCompress(content), piece), size);
      EXPECT_TRUE(one.second.ok()) << size << " " << one.second.ToString();
      EXPECT_EQ(one.first, content);
      auto two = ReadUntilError(
          *Decoded(ZstdCompress(content) + ZstdCompress(content), piece), size);
      EXPECT_TRUE(two.second.ok()) << size << " " << two.second.ToString();
      EXPECT_EQ(two.first, content + content);
    }
  }
}

TEST(DecompressorTest, ZstdRoundTripsIncludingSeveralFrames) {
  const std::string a = NumberedUrls(20000);
  const std::string b = NumberedUrls(300, 20000);
  for (const std::size_t piece : {std::size_t{5}, std::size_t{1} << 20}) {
    auto source = Decoded(ZstdCompress(a) + ZstdCompress(b, 19), piece);
    auto all = ReadAll(*source, 1000);
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    EXPECT_EQ(*all, a + b);
  }
}

TEST(DecompressorTest, TruncatedZstdIsAnError) {
  const std::string compressed = ZstdCompress(NumberedUrls(20000));
  auto all = ReadAll(*Decoded(compressed.substr(0, compressed.size() - 3)));
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(all.status().message(), StartsWith("zstd stream is corrupt after "));
  EXPECT_THAT(all.status().message(), HasSubstr("unexpected end of file"));
}

TEST(DecompressorTest, ZstdWithGarbageAfterTheMagicIsAnError) {
  auto all = ReadAll(*Decoded(std::string("\x28\xb5\x2f\xfd", 4) + RandomBytes(5000, 1)));
  ASSERT_FALSE(all.ok());
  EXPECT_THAT(all.status().message(), StartsWith("zstd stream is corrupt after "));
}

TEST(DecompressorTest, GarbageAfterGzipMagicIsAnErrorNotACrash) {
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    auto all = ReadAll(*Decoded(std::string("\x1f\x8b", 2) + RandomBytes(5000, seed)));
    ASSERT_FALSE(all.ok());
    EXPECT_THAT(all.status().message(), StartsWith("gzip stream is corrupt after "));
  }
}

}  // namespace
}  // namespace sluice
