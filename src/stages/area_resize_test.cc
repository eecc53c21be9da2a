#include "src/stages/area_resize.h"

#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>
#include <utility>

#include "src/stages/image_test_util.h"

namespace sluice {
namespace {

using testing::MaxDifference;

TEST(AreaResizeTest, MatchesOpenCvInterArea) {
  cv::RNG rng(7);
  const std::pair<cv::Size, cv::Size> cases[] = {
      {{300, 225}, {256, 192}},  // after a 2/8 JPEG decode
      {{263, 197}, {256, 192}},  // barely smaller
      {{1200, 900}, {256, 192}},  // a full-size decode
      {{512, 384}, {256, 192}},   // exactly half
      {{256, 300}, {256, 171}},   // one side unchanged
      {{97, 61}, {13, 7}},        // odd sizes, large ratio
      {{5, 5}, {1, 1}},
  };
  for (const auto& [from, to] : cases) {
    cv::Mat src(from, CV_8UC3);
    rng.fill(src, cv::RNG::UNIFORM, 0, 256);
    cv::Mat reference;
    cv::resize(src, reference, to, 0, 0, cv::INTER_AREA);
    const cv::Mat ours = AreaResize(src, to);
    ASSERT_EQ(ours.size(), to);
    ASSERT_EQ(ours.type(), CV_8UC3);
    EXPECT_LE(MaxDifference(ours, reference), 1.0) << from << " -> " << to;
  }
}

TEST(AreaResizeTest, FlatStaysFlatAndSameSizeIsACopy) {
  const cv::Mat flat(331, 217, CV_8UC3, cv::Scalar(10, 128, 250));
  EXPECT_EQ(MaxDifference(AreaResize(flat, {101, 97}), cv::Mat(97, 101, CV_8UC3,
                                                               cv::Scalar(10, 128, 250))),
            0.0);
  cv::Mat src(40, 30, CV_8UC3);
  cv::RNG(3).fill(src, cv::RNG::UNIFORM, 0, 256);
  EXPECT_EQ(MaxDifference(AreaResize(src, src.size()), src), 0.0);
}

TEST(AreaResizeTest, GrowingOrOtherTypesGoToOpenCv) {
  const cv::Mat small(10, 10, CV_8UC3, cv::Scalar(1, 2, 3));
  EXPECT_EQ(AreaResize(small, {20, 5}).size(), cv::Size(20, 5));
  const cv::Mat gray(10, 10, CV_8UC1, cv::Scalar(9));
  const cv::Mat out = AreaResize(gray, {5, 5});
  EXPECT_EQ(out.type(), CV_8UC1);
  EXPECT_EQ(out.at<std::uint8_t>(2, 2), 9);
}

}  // namespace
}  // namespace sluice
