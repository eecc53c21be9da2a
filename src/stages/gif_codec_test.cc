#include "src/stages/gif_codec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "src/stages/animated_test_util.h"

namespace sluice {
namespace {

using testing::GifFrame;
using testing::MakeGif;
using testing::SolidGifFrame;

// Test GIFs index colours 0 red, 1 green, 2 blue, 3 black (animated_test_util.h).
const cv::Vec4b kRed(0, 0, 255, 255), kGreen(0, 255, 0, 255), kBlue(255, 0, 0, 255);
const cv::Vec4b kClear(0, 0, 0, 0);

TEST(GifDecoderTest, TheFirstFrameOfAnAnimation) {
  const Bytes gif = MakeGif(6, 4, {SolidGifFrame(6, 4, 0), SolidGifFrame(6, 4, 2)});
  const DecodedPixels result = DecodeGif(gif, 1'000'000);
  ASSERT_FALSE(result.pixels.empty()) << result.error;
  ASSERT_EQ(result.pixels.type(), CV_8UC4);
  ASSERT_EQ(result.pixels.size(), cv::Size(6, 4));
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 6; ++x) EXPECT_EQ(result.pixels.at<cv::Vec4b>(y, x), kRed);
  }
}

TEST(GifDecoderTest, OffsetFrameAndTransparencyLeaveTheCanvasClear) {
  GifFrame frame = SolidGifFrame(3, 2, 1);  // green, at (2, 1) on a 6x4 canvas
  frame.left = 2;
  frame.top = 1;
  frame.transparent = 3;
  frame.indexes[0] = 3;  // its top-left pixel transparent
  const DecodedPixels result = DecodeGif(MakeGif(6, 4, {frame}), 1'000'000);
  ASSERT_FALSE(result.pixels.empty()) << result.error;
  EXPECT_EQ(result.pixels.at<cv::Vec4b>(0, 0), kClear);  // outside the frame
  EXPECT_EQ(result.pixels.at<cv::Vec4b>(1, 2), kClear);  // transparent index
  EXPECT_EQ(result.pixels.at<cv::Vec4b>(1, 3), kGreen);
  EXPECT_EQ(result.pixels.at<cv::Vec4b>(2, 4), kGreen);
  EXPECT_EQ(result.pixels.at<cv::Vec4b>(3, 4), kClear);  // below the frame
}

TEST(GifDecoderTest, InterlacedRowsComeBackInOrder) {
  GifFrame frame = SolidGifFrame(2, 11, 0);
  frame.interlace = true;
  for (int y = 0; y < 11; ++y) {  // row y gets colour y % 3
    frame.indexes[static_cast<std::size_t>(2 * y)] = static_cast<std::uint8_t>(y % 3);
    frame.indexes[static_cast<std::size_t>(2 * y + 1)] = static_cast<std::uint8_t>(y % 3);
  }
  const DecodedPixels result = DecodeGif(MakeGif(2, 11, {frame}), 1'000'000);
  ASSERT_FALSE(result.pixels.empty()) << result.error;
  for (int y = 0; y < 11; ++y) {
    const cv::Vec4b expected = y % 3 == 0 ? kRed : y % 3 == 1 ? kGreen : kBlue;
    EXPECT_EQ(result.pixels.at<cv::Vec4b>(y, 1), expected) << "row " << y;
  }
}

TEST(GifDecoderTest, AFrameOverMaxPixelsIsRefusedBeforeDecoding) {
  const Bytes gif = MakeGif(40, 30, {SolidGifFrame(40, 30, 1)});
  const DecodedPixels result = DecodeGif(gif, 1000);
  EXPECT_TRUE(result.pixels.empty());
  EXPECT_EQ(result.error, "gif: a first frame of 40x30 pixels (max_pixels 1000)");
}

TEST(GifDecoderTest, BrokenFilesSayWhy) {
  const Bytes gif = MakeGif(40, 30, {SolidGifFrame(40, 30, 1)});
  for (const std::size_t keep : {std::size_t{0}, std::size_t{8}, std::size_t{20},
                                 gif.size() / 2, gif.size() - 2}) {
    const Bytes cut(gif.begin(), gif.begin() + static_cast<std::ptrdiff_t>(keep));
    const DecodedPixels result = DecodeGif(cut, 1'000'000);
    EXPECT_TRUE(result.pixels.empty()) << keep;
    EXPECT_TRUE(result.error.starts_with("gif: ")) << keep << ": " << result.error;
    EXPECT_GT(result.error.size(), 5u) << keep;
  }
  const Bytes no_image = {'G', 'I', 'F', '8', '9', 'a', 10, 0, 10, 0, 0, 0, 0, 0x3B};
  EXPECT_EQ(DecodeGif(no_image, 1'000'000).error, "gif: the file has no image");
}

}  // namespace
}  // namespace sluice
