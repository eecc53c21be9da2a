#include "src/stages/image_header.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "src/stages/image_test_util.h"

namespace sluice {
namespace {

using testing::Encode;
using testing::Gradient;

Bytes FromString(const std::string& text) { return Bytes(text.begin(), text.end()); }

void PutBe32(Bytes& b, std::size_t at, std::uint32_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 24);
  b[at + 1] = static_cast<std::uint8_t>(v >> 16);
  b[at + 2] = static_cast<std::uint8_t>(v >> 8);
  b[at + 3] = static_cast<std::uint8_t>(v);
}

// A minimal GIF89a: header, logical screen, no colour table, trailer.
Bytes TinyGif(std::uint16_t width, std::uint16_t height) {
  Bytes b = FromString("GIF89a");
  b.push_back(static_cast<std::uint8_t>(width & 0xFF));
  b.push_back(static_cast<std::uint8_t>(width >> 8));
  b.push_back(static_cast<std::uint8_t>(height & 0xFF));
  b.push_back(static_cast<std::uint8_t>(height >> 8));
  b.insert(b.end(), {0x00, 0x00, 0x00, 0x3B});
  return b;
}

TEST(ImageHeaderTest, PngFromOpenCv) {
  const Bytes png = Encode(Gradient(123, 45), ".png");
  const auto header = ReadImageHeader(png);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->format, ImageFormat::kPng);
  EXPECT_TRUE(header->dimensions_known);
  EXPECT_EQ(header->width, 123);
  EXPECT_EQ(header->height, 45);
  EXPECT_FALSE(header->has_alpha);
}

TEST(ImageHeaderTest, PngWithAlphaAndHugeDeclaredSize) {
  cv::Mat bgra(4, 5, CV_8UC4, cv::Scalar(1, 2, 3, 4));
  Bytes png = Encode(bgra, ".png");
  auto header = ReadPngHeader(png);
  ASSERT_TRUE(header.has_value());
  EXPECT_TRUE(header->has_alpha);
  PutBe32(png, 16, 100000);
  PutBe32(png, 20, 100000);
  header = ReadPngHeader(png);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->width, 100000);
  EXPECT_EQ(header->height, 100000);
}

TEST(ImageHeaderTest, JpegFromOpenCvIncludingGray) {
  const Bytes jpeg = Encode(Gradient(640, 480), ".jpg");
  auto header = ReadImageHeader(jpeg);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->format, ImageFormat::kJpeg);
  EXPECT_EQ(header->width, 640);
  EXPECT_EQ(header->height, 480);
  EXPECT_EQ(header->orientation, 1);
  cv::Mat gray(31, 17, CV_8UC1, cv::Scalar(9));
  header = ReadJpegHeader(Encode(gray, ".jpg", {cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->width, 17);
  EXPECT_EQ(header->height, 31);
}

TEST(ImageHeaderTest, JpegWithoutFrameHeaderIsUnreadable) {
  // SOI, then SOS straight away: no SOF to read the size from.
  const Bytes jpeg = {0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x00, 0x00};
  EXPECT_FALSE(ReadJpegHeader(jpeg).has_value());
  const auto header = ReadImageHeader(jpeg);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->format, ImageFormat::kJpeg);
  EXPECT_FALSE(header->dimensions_known);
}

TEST(ImageHeaderTest, ExifOrientationBothByteOrders) {
  // "Exif\0\0", TIFF header, IFD0 with one entry: Orientation SHORT 1 = 6.
  const Bytes little = {'E',  'x',  'i', 'f', 0, 0, 'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0,
                        0x12, 0x01, 3,   0,   1, 0, 0,   0,   6,  0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(ReadExifOrientation(little), 6);
  const Bytes big = {'E',  'x',  'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1,
                     0x01, 0x12, 0,   3,   0, 0, 0,   1,   0, 8,  0, 0, 0, 0, 0, 0};
  EXPECT_EQ(ReadExifOrientation(big), 8);
  Bytes truncated(little.begin(), little.begin() + 20);
  EXPECT_EQ(ReadExifOrientation(truncated), 1);
  Bytes bad_value = little;
  bad_value[24] = 9;
  EXPECT_EQ(ReadExifOrientation(bad_value), 1);
}

TEST(ImageHeaderTest, Gif) {
  const auto header = ReadImageHeader(TinyGif(300, 200));
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->format, ImageFormat::kGif);
  EXPECT_EQ(header->width, 300);
  EXPECT_EQ(header->height, 200);
  EXPECT_FALSE(ReadGifHeader(FromString("GIF89a\x01")).has_value());
}

TEST(ImageHeaderTest, WebpLossyAndLossless) {
  auto header = ReadImageHeader(
      Encode(Gradient(321, 123), ".webp", {cv::IMWRITE_WEBP_QUALITY, 80}));
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->format, ImageFormat::kWebp);
  EXPECT_EQ(header->width, 321);
  EXPECT_EQ(header->height, 123);
  EXPECT_FALSE(header->has_alpha);
  // Quality above 100 selects lossless (VP8L); with 4 channels it carries alpha.
  cv::Mat bgra(7, 9, CV_8UC4, cv::Scalar(10, 20, 30, 0));
  header = ReadImageHeader(Encode(bgra, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}));
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->width, 9);
  EXPECT_EQ(header->height, 7);
  EXPECT_TRUE(header->has_alpha);
}

TEST(ImageHeaderTest, WebpExtendedHeader) {
  Bytes b = FromString(std::string("RIFF\0\0\0\0WEBPVP8X", 16));
  b.resize(30, 0);
  b[20] = 0x10;  // alpha flag
  b[24] = 0x9F;  // width - 1 = 0x01869F = 99999
  b[25] = 0x86;
  b[26] = 0x01;
  b[27] = 0x09;  // height - 1 = 9
  const auto header = ReadWebpHeader(b);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->width, 100000);
  EXPECT_EQ(header->height, 10);
  EXPECT_TRUE(header->has_alpha);
  b.resize(29);
  EXPECT_FALSE(ReadWebpHeader(b).has_value());
}

TEST(ImageHeaderTest, BmpAndTiff) {
  auto header = ReadImageHeader(Encode(Gradient(33, 22), ".bmp"));
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->format, ImageFormat::kBmp);
  EXPECT_EQ(header->width, 33);
  EXPECT_EQ(header->height, 22);
  header = ReadImageHeader(Encode(Gradient(33, 22), ".tiff"));
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->format, ImageFormat::kTiff);
  EXPECT_FALSE(header->dimensions_known);
}

// Found by tests/fuzz/image_header_fuzzer.cc: a header with one side 0 (or a
// negative BMP width) was not known but kept its other side, and a PNG could declare
// sides of 2^32 - 1, whose product overflows the decode stage's 64-bit pixel count.
TEST(ImageHeaderTest, UnknownDimensionsAreZeroAndPngSidesAreBounded) {
  auto header = ReadImageHeader(TinyGif(0, 200));
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->format, ImageFormat::kGif);
  EXPECT_FALSE(header->dimensions_known);
  EXPECT_EQ(header->width, 0);
  EXPECT_EQ(header->height, 0);

  Bytes bmp = Encode(Gradient(3, 2), ".bmp");
  bmp[18] = bmp[19] = bmp[20] = bmp[21] = 0xFF;  // width -1
  header = ReadBmpHeader(bmp);
  ASSERT_TRUE(header.has_value());
  EXPECT_FALSE(header->dimensions_known);
  EXPECT_EQ(header->width, 0);
  EXPECT_EQ(header->height, 0);

  Bytes png = Encode(Gradient(4, 5), ".png");
  PutBe32(png, 16, 0xFFFFFFFF);
  PutBe32(png, 20, 0x80000000);
  header = ReadImageHeader(png);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->format, ImageFormat::kPng);
  EXPECT_FALSE(header->dimensions_known);
  EXPECT_EQ(header->width, 0);
  EXPECT_EQ(header->height, 0);
  PutBe32(png, 16, 0x7FFFFFFF);
  PutBe32(png, 20, 0x7FFFFFFF);
  header = ReadImageHeader(png);
  ASSERT_TRUE(header.has_value());
  EXPECT_TRUE(header->dimensions_known);
  EXPECT_EQ(header->width, 0x7FFFFFFF);
  EXPECT_EQ(header->height, 0x7FFFFFFF);
}

TEST(ImageHeaderTest, NotAnImage) {
  EXPECT_FALSE(ReadImageHeader(FromString("<html><body>404</body></html>")).has_value());
  EXPECT_FALSE(ReadImageHeader(Bytes{}).has_value());
  EXPECT_EQ(SniffImageFormat(FromString("GIF90a......")), ImageFormat::kUnknown);
  EXPECT_EQ(ImageFormatName(ImageFormat::kUnknown), "");
  EXPECT_EQ(ImageFormatName(ImageFormat::kWebp), "webp");
}

// Every prefix of a real header, and many randomly mutated headers, must parse or be
// refused without reading out of bounds (ASan checks) and with sane results.
TEST(ImageHeaderTest, TruncatedAndMutatedHeadersNeverCrash) {
  std::vector<Bytes> seeds = {
      Encode(Gradient(40, 30), ".png"),
      Encode(Gradient(40, 30), ".jpg"),
      Encode(Gradient(40, 30), ".webp"),
      Encode(cv::Mat(30, 40, CV_8UC4, cv::Scalar(0, 0, 0, 0)), ".webp",
             {cv::IMWRITE_WEBP_QUALITY, 101}),
      Encode(Gradient(40, 30), ".bmp"),
      TinyGif(40, 30),
  };
  for (Bytes& seed : seeds) seed.resize(std::min<std::size_t>(seed.size(), 400));
  std::mt19937 rng(12345);
  int parsed = 0;
  for (const Bytes& seed : seeds) {
    for (std::size_t n = 0; n <= seed.size(); ++n) {
      const std::span<const std::uint8_t> prefix(seed.data(), n);
      const auto header = ReadImageHeader(prefix);
      if (header.has_value() && header->dimensions_known) {
        ++parsed;
        EXPECT_EQ(header->width, 40);
        EXPECT_EQ(header->height, 30);
      }
    }
    for (int round = 0; round < 2000; ++round) {
      Bytes mutated = seed;
      const int flips = 1 + static_cast<int>(rng() % 8);
      for (int i = 0; i < flips; ++i) {
        // Mostly in the first 64 bytes, where the headers are.
        const std::size_t at = rng() % std::min<std::size_t>(mutated.size(), 64);
        mutated[at] = static_cast<std::uint8_t>(rng());
      }
      if (rng() % 4 == 0) mutated.resize(rng() % (mutated.size() + 1));
      const auto header = ReadImageHeader(mutated);
      if (header.has_value() && header->dimensions_known) {
        EXPECT_GT(header->width, 0);
        EXPECT_GT(header->height, 0);
        EXPECT_LE(header->width, std::int64_t{1} << 32);
        EXPECT_LE(header->height, std::int64_t{1} << 32);
      }
    }
  }
  EXPECT_GE(parsed, 6);  // each seed parsed at least once, when whole
}

}  // namespace
}  // namespace sluice
