// ImagePayload's encoding for the next stage group: what DecodeImagePayload reads
// back is the same image, pixel for pixel, whatever its shape.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <opencv2/core.hpp>
#include <random>
#include <string>

#include "src/stages/image.h"

namespace sluice {
namespace {

cv::Mat Noise(int width, int height, int type, std::uint32_t seed) {
  cv::Mat pixels(height, width, type);
  std::mt19937 random(seed);
  for (int row = 0; row < height; ++row) {
    std::uint8_t* line = pixels.ptr<std::uint8_t>(row);
    for (std::size_t i = 0; i < pixels.elemSize() * width; ++i) {
      line[i] = static_cast<std::uint8_t>(random());
    }
  }
  return pixels;
}

const ImagePayload& RoundTrip(const ImagePayload& image,
                              std::shared_ptr<const Payload>& holder) {
  std::string bytes = "prefix";  // Encode appends
  image.Encode(bytes);
  Result<std::shared_ptr<const Payload>> decoded =
      DecodeImagePayload(std::string_view(bytes).substr(6));
  EXPECT_TRUE(decoded.ok()) << decoded.ToStatus().ToString();
  holder = decoded.ok() ? *decoded : nullptr;
  static const ImagePayload empty(cv::Mat(), 0, 0);
  const auto* back = dynamic_cast<const ImagePayload*>(holder.get());
  return back != nullptr ? *back : empty;
}

bool SamePixels(const cv::Mat& a, const cv::Mat& b) {
  if (a.size() != b.size() || a.type() != b.type()) return false;
  return a.empty() || cv::norm(a, b, cv::NORM_INF) == 0;
}

TEST(ImagePayloadTest, ComesBackPixelForPixel) {
  for (const int type : {CV_8UC3, CV_8UC1}) {
    for (const auto& [width, height] :
         {std::pair{640, 480}, std::pair{1, 1}, std::pair{1, 7}, std::pair{7, 1},
          std::pair{33, 17}}) {
      const ImagePayload image(Noise(width, height, type, width * 31 + height), 1000,
                               750, true);
      std::shared_ptr<const Payload> holder;
      const ImagePayload& back = RoundTrip(image, holder);
      EXPECT_TRUE(SamePixels(image.pixels(), back.pixels()))
          << width << "x" << height << " type " << type;
      EXPECT_EQ(back.original_width(), 1000);
      EXPECT_EQ(back.original_height(), 750);
      EXPECT_TRUE(back.source_pixels());
    }
  }
}

TEST(ImagePayloadTest, AViewIntoABiggerImageComesBackAsItsOwnImage) {
  const cv::Mat big = Noise(100, 80, CV_8UC3, 7);
  const cv::Mat view = big(cv::Rect(10, 5, 31, 40));  // rows not contiguous
  ASSERT_FALSE(view.isContinuous());
  const ImagePayload image(view, 31, 40);
  std::shared_ptr<const Payload> holder;
  const ImagePayload& back = RoundTrip(image, holder);
  EXPECT_TRUE(SamePixels(view, back.pixels()));
  EXPECT_FALSE(back.source_pixels());
}

TEST(ImagePayloadTest, AnEmptyImageComesBackEmpty) {
  const ImagePayload image(cv::Mat(0, 0, CV_8UC3), 0, 0);
  std::shared_ptr<const Payload> holder;
  const ImagePayload& back = RoundTrip(image, holder);
  EXPECT_EQ(back.width(), 0);
  EXPECT_EQ(back.height(), 0);
}

TEST(ImagePayloadTest, DamagedBytesAreRefusedNotMisread) {
  const ImagePayload image(Noise(20, 10, CV_8UC3, 3), 20, 10);
  std::string bytes;
  image.Encode(bytes);
  EXPECT_FALSE(DecodeImagePayload(std::string_view(bytes).substr(0, 10)).ok());
  EXPECT_FALSE(DecodeImagePayload(std::string_view(bytes).substr(0, bytes.size() - 1)).ok());
  std::string longer = bytes + "x";
  EXPECT_FALSE(DecodeImagePayload(longer).ok());
  std::string bad_channels = bytes;
  bad_channels[8] = 4;  // i32 channels
  const Result<std::shared_ptr<const Payload>> refused = DecodeImagePayload(bad_channels);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.ToStatus().ToString().find("impossible shape"), std::string::npos);
}

}  // namespace
}  // namespace sluice
