#include "src/stages/png_codec.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "src/stages/image_test_util.h"

namespace sluice {
namespace {

using testing::Encode;
using testing::Gradient;

// The pixels OpenCV decodes from `png` with IMREAD_COLOR.
cv::Mat OpenCvColor(const Bytes& png) {
  return cv::imdecode(cv::Mat(1, static_cast<int>(png.size()), CV_8UC1,
                              const_cast<std::uint8_t*>(png.data())),
                      cv::IMREAD_COLOR);
}

void ExpectSamePixels(const cv::Mat& a, const cv::Mat& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  ASSERT_EQ(a.type(), b.type()) << what;
  EXPECT_EQ(cv::norm(a, b, cv::NORM_INF), 0) << what;
}

TEST(PngDecoderTest, SamePixelsAsOpenCv) {
  const cv::Mat bgr = Gradient(67, 45);
  cv::Mat gray, gray16, bgr16;
  cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
  gray.convertTo(gray16, CV_16U, 257.0);
  bgr.convertTo(bgr16, CV_16U, 257.0);
  const std::vector<std::pair<std::string, Bytes>> cases = {
      {"8-bit BGR", Encode(bgr, ".png")},
      {"8-bit gray", Encode(gray, ".png")},
      {"16-bit gray", Encode(gray16, ".png")},
      {"16-bit BGR", Encode(bgr16, ".png")},
      {"1-bit", Encode(gray, ".png", {cv::IMWRITE_PNG_BILEVEL, 1})},
  };
  for (const auto& [what, png] : cases) {
    const DecodedPixels result = DecodePng(png);
    ASSERT_FALSE(result.pixels.empty()) << what << ": " << result.error;
    ExpectSamePixels(result.pixels, OpenCvColor(png), what);
  }
}

TEST(PngDecoderTest, TransparencyComesBackAsBgra) {
  cv::Mat bgra(5, 7, CV_8UC4, cv::Scalar(10, 20, 30, 40));
  bgra.at<cv::Vec4b>(1, 2) = cv::Vec4b(200, 100, 0, 255);
  const DecodedPixels result = DecodePng(Encode(bgra, ".png"));
  ASSERT_EQ(result.pixels.type(), CV_8UC4) << result.error;
  ExpectSamePixels(result.pixels, bgra, "BGRA");
}

// A PNG chunk: length, type, data, CRC over type and data.
Bytes Chunk(const char (&type)[5], const Bytes& data) {
  Bytes out;
  const auto put32 = [&out](std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<std::uint8_t>(v >> shift));
  };
  put32(static_cast<std::uint32_t>(data.size()));
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  const uLong crc = crc32(crc32(0, reinterpret_cast<const Bytef*>(type), 4), data.data(),
                          static_cast<uInt>(data.size()));
  put32(static_cast<std::uint32_t>(crc));
  return out;
}

// An animated PNG (APNG) of two frames: `first` as the default image (IDAT, with an
// fcTL before it, so it is also frame 1), and `second`'s compressed data as frame 2
// (fdAT). Readers without APNG support show the default image.
Bytes MakeApng(const cv::Mat& first, const cv::Mat& second) {
  const Bytes a = Encode(first, ".png"), b = Encode(second, ".png");
  // cv::imencode writes signature (8), IHDR (25), then IDAT chunks, then IEND (12).
  const auto idat = [](const Bytes& png) {
    return Bytes(png.begin() + 33, png.end() - 12);
  };
  const auto be32 = [](std::uint32_t v) {
    return Bytes{static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                 static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
  };
  const auto frame_control = [&](std::uint32_t sequence) {
    Bytes data = be32(sequence);
    for (const std::uint32_t v : {static_cast<std::uint32_t>(first.cols),
                                  static_cast<std::uint32_t>(first.rows), 0u, 0u}) {
      const Bytes field = be32(v);
      data.insert(data.end(), field.begin(), field.end());
    }
    data.insert(data.end(), {0, 1, 0, 10, 0, 0});  // delay 1/10 s, no dispose, source
    return Chunk("fcTL", data);
  };
  Bytes actl = be32(2);         // two frames
  const Bytes plays = be32(0);  // looping forever
  actl.insert(actl.end(), plays.begin(), plays.end());
  // fdAT: a sequence number, then the zlib stream of b's single IDAT chunk.
  const Bytes second_idat = idat(b);
  Bytes fdat = be32(2);
  fdat.insert(fdat.end(), second_idat.begin() + 8, second_idat.end() - 4);

  Bytes out(a.begin(), a.begin() + 33);
  for (const Bytes& part : {Chunk("acTL", actl), frame_control(0), idat(a),
                            frame_control(1), Chunk("fdAT", fdat)}) {
    out.insert(out.end(), part.begin(), part.end());
  }
  out.insert(out.end(), a.end() - 12, a.end());
  return out;
}

TEST(PngDecoderTest, AnAnimatedPngDecodesToItsFirstFrame) {
  const cv::Mat red(6, 8, CV_8UC3, cv::Scalar(0, 0, 255));
  const cv::Mat blue(6, 8, CV_8UC3, cv::Scalar(255, 0, 0));
  const Bytes apng = MakeApng(red, blue);
  const DecodedPixels result = DecodePng(apng);
  ASSERT_FALSE(result.pixels.empty()) << result.error;
  ExpectSamePixels(result.pixels, red, "APNG");
}

TEST(PngDecoderTest, BrokenFilesSayWhyAndPrintNothing) {
  const Bytes png = Encode(Gradient(64, 48), ".png");
  Bytes cut(png.begin(), png.begin() + 60);
  Bytes bad_crc = png;
  bad_crc[30] ^= 0x55;  // inside IHDR: its CRC no longer matches
  Bytes bad_data = png;
  bad_data[png.size() - 30] ^= 0x55;  // inside the compressed pixels
  for (const auto& [what, bytes, expected] :
       std::vector<std::tuple<std::string, Bytes, std::string>>{
           {"cut short", cut, "file cut short"},
           {"IHDR CRC", bad_crc, "CRC error"},
           {"pixel data", bad_data, "png: "},
           {"empty", Bytes{}, "file cut short"}}) {
    ::testing::internal::CaptureStderr();
    const DecodedPixels result = DecodePng(bytes);
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "") << what;
    EXPECT_TRUE(result.pixels.empty()) << what;
    EXPECT_NE(result.error.find(expected), std::string::npos)
        << what << ": " << result.error;
  }
}

}  // namespace
}  // namespace sluice
