#include "src/stages/webp_codec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "src/stages/animated_test_util.h"
#include "src/stages/image_test_util.h"

namespace sluice {
namespace {

using testing::Encode;
using testing::Gradient;
using testing::MakeAnimatedWebp;

TEST(WebpDecoderTest, StillImagesAsOpenCvDecodesThem) {
  const cv::Mat photo = Gradient(67, 45);
  for (const int quality : {80, 101}) {  // lossy, lossless
    const Bytes webp = Encode(photo, ".webp", {cv::IMWRITE_WEBP_QUALITY, quality});
    const WebpDecodeResult result = DecodeWebp(webp);
    ASSERT_FALSE(result.pixels.empty()) << result.error;
    EXPECT_FALSE(result.animated);
    const cv::Mat opencv = cv::imdecode(webp, cv::IMREAD_COLOR);
    ASSERT_EQ(result.pixels.type(), CV_8UC3);
    EXPECT_EQ(cv::norm(result.pixels, opencv, cv::NORM_INF), 0) << quality;
  }
  cv::Mat bgra(5, 7, CV_8UC4, cv::Scalar(10, 20, 30, 40));
  const WebpDecodeResult alpha =
      DecodeWebp(Encode(bgra, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}));
  ASSERT_EQ(alpha.pixels.type(), CV_8UC4) << alpha.error;
  EXPECT_EQ(cv::norm(alpha.pixels, bgra, cv::NORM_INF), 0);
}

TEST(WebpDecoderTest, AnAnimationDecodesToItsFirstFrame) {
  const cv::Mat red(12, 16, CV_8UC4, cv::Scalar(0, 0, 255, 255));
  const cv::Mat blue(12, 16, CV_8UC4, cv::Scalar(255, 0, 0, 255));
  const Bytes webp = MakeAnimatedWebp({red, blue, red});
  // OpenCV 4.6 cannot read it at all.
  EXPECT_TRUE(cv::imdecode(webp, cv::IMREAD_COLOR).empty());
  const WebpDecodeResult result = DecodeWebp(webp);
  ASSERT_FALSE(result.pixels.empty()) << result.error;
  EXPECT_TRUE(result.animated);
  ASSERT_EQ(result.pixels.type(), CV_8UC4);
  ASSERT_EQ(result.pixels.size(), cv::Size(16, 12));
  EXPECT_EQ(cv::norm(result.pixels, red, cv::NORM_INF), 0);
}

TEST(WebpDecoderTest, BrokenFilesSayWhy) {
  const Bytes webp = Encode(Gradient(64, 48), ".webp", {cv::IMWRITE_WEBP_QUALITY, 80});
  const Bytes cut(webp.begin(),
                  webp.begin() + static_cast<std::ptrdiff_t>(webp.size() / 2));
  EXPECT_EQ(DecodeWebp(cut).error, "webp: not enough data");
  EXPECT_EQ(DecodeWebp(Bytes{}).error, "webp: not enough data");
  Bytes corrupt = webp;
  for (std::size_t i = 40; i < corrupt.size(); i += 3) corrupt[i] ^= 0xA5;
  const WebpDecodeResult result = DecodeWebp(corrupt);
  EXPECT_TRUE(result.pixels.empty());
  EXPECT_TRUE(result.error.starts_with("webp: ")) << result.error;
  const cv::Mat red(12, 16, CV_8UC4, cv::Scalar(0, 0, 255, 255));
  const cv::Mat blue(12, 16, CV_8UC4, cv::Scalar(255, 0, 0, 255));
  const Bytes animation = MakeAnimatedWebp({red, blue});
  ASSERT_TRUE(DecodeWebp(animation).animated);
  const Bytes cut_animation(
      animation.begin(),
      animation.begin() + static_cast<std::ptrdiff_t>(animation.size() / 2));
  const WebpDecodeResult broken = DecodeWebp(cut_animation);
  EXPECT_TRUE(broken.pixels.empty());
  EXPECT_TRUE(broken.error.starts_with("webp: ")) << broken.error;
}

}  // namespace
}  // namespace sluice
