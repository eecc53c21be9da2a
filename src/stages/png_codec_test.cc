#include "src/stages/png_codec.h"

#include <gtest/gtest.h>

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
    const PngDecodeResult result = DecodePng(png);
    ASSERT_FALSE(result.pixels.empty()) << what << ": " << result.error;
    ExpectSamePixels(result.pixels, OpenCvColor(png), what);
  }
}

TEST(PngDecoderTest, TransparencyComesBackAsBgra) {
  cv::Mat bgra(5, 7, CV_8UC4, cv::Scalar(10, 20, 30, 40));
  bgra.at<cv::Vec4b>(1, 2) = cv::Vec4b(200, 100, 0, 255);
  const PngDecodeResult result = DecodePng(Encode(bgra, ".png"));
  ASSERT_EQ(result.pixels.type(), CV_8UC4) << result.error;
  ExpectSamePixels(result.pixels, bgra, "BGRA");
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
    const PngDecodeResult result = DecodePng(bytes);
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "") << what;
    EXPECT_TRUE(result.pixels.empty()) << what;
    EXPECT_NE(result.error.find(expected), std::string::npos) << what << ": " << result.error;
  }
}

}  // namespace
}  // namespace sluice
