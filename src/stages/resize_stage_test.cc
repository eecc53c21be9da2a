#include "src/stages/resize_stage.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <opencv2/imgproc.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "src/stages/area_resize.h"
#include "src/stages/image.h"
#include "src/stages/image_test_util.h"

namespace sluice {
namespace {

using testing::BuildImageStage;
using testing::Gradient;

Record WithImage(int width, int height, std::int64_t original_width = 0,
                 std::int64_t original_height = 0) {
  Record record(1, "u");
  record.Set(kImageField,
             std::shared_ptr<const Payload>(std::make_shared<ImagePayload>(
                 Gradient(width, height), original_width > 0 ? original_width : width,
                 original_height > 0 ? original_height : height)));
  return record;
}

// Runs a resize stage built from `options` (as YAML would give them) on an image.
Record Resize(std::map<std::string, std::string> options, Record record) {
  auto stage = BuildImageStage("resize", std::move(options));
  EXPECT_TRUE(stage.ok()) << stage.status().ToString();
  if (!stage.ok()) return record;
  static_cast<CpuStage&>(**stage).ProcessOne(record);
  return record;
}

std::pair<int, int> OutputSize(const Record& record) {
  const ImagePayload* image = FindImage(record);
  if (image == nullptr) return {-1, -1};
  EXPECT_EQ(std::get<std::int64_t>(*record.Find("resized_width")), image->width());
  EXPECT_EQ(std::get<std::int64_t>(*record.Find("resized_height")), image->height());
  return {image->width(), image->height()};
}

struct ModeCase {
  std::string mode;
  int width, height;                    // input
  int expected_width, expected_height;  // output, size 256
};

TEST(ResizeStageTest, EveryModeOnLandscapePortraitSquare) {
  const std::vector<ModeCase> cases = {
      {"no", 1000, 800, 1000, 800},         {"no", 30, 90, 30, 90},
      {"keep_ratio", 1000, 800, 320, 256},  // smaller side -> 256
      {"keep_ratio", 800, 1000, 256, 320},  {"keep_ratio", 500, 500, 256, 256},
      {"keep_ratio", 100, 50, 512, 256},  // enlarged
      {"center_crop", 1000, 800, 256, 256}, {"center_crop", 800, 1000, 256, 256},
      {"center_crop", 500, 500, 256, 256},  {"center_crop", 100, 50, 256, 256},
      {"border", 1000, 800, 256, 256},      {"border", 800, 1000, 256, 256},
      {"border", 500, 500, 256, 256},       {"border", 100, 50, 256, 256},
  };
  for (const ModeCase& c : cases) {
    const Record record = Resize({{"mode", c.mode}}, WithImage(c.width, c.height));
    ASSERT_FALSE(record.failed()) << c.mode << ": " << record.error();
    EXPECT_EQ(OutputSize(record), std::make_pair(c.expected_width, c.expected_height))
        << c.mode << " " << c.width << "x" << c.height;
  }
}

TEST(ResizeStageTest, ScaleForModeRoundsLikePython) {
  // border on 1000x800 to 256: 800 * 0.256 = 204.8 -> 205.
  EXPECT_EQ(ScaleForMode(1000, 800, 256, ResizeMode::kBorder).height, 205);
  // keep_ratio on 3x2 to 3: 3 * 1.5 = 4.5 -> 4 (half to even, as Python's round).
  EXPECT_EQ(ScaleForMode(3, 2, 3, ResizeMode::kKeepRatio).width, 4);
  EXPECT_EQ(ScaleForMode(5, 2, 3, ResizeMode::kKeepRatio).width, 8);  // 7.5 -> 8
  EXPECT_EQ(ScaleForMode(7, 3, 3, ResizeMode::kNo).width, 7);
}

TEST(ResizeStageTest, BorderPadsWithWhiteCentred) {
  const Record record = Resize({{"mode", "border"}}, WithImage(1000, 800));
  const cv::Mat& pixels = FindImage(record)->pixels();
  // 256x205 content, 51 rows of padding: 25 on top, 26 below.
  EXPECT_EQ(pixels.at<cv::Vec3b>(0, 128), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(pixels.at<cv::Vec3b>(24, 128), cv::Vec3b(255, 255, 255));
  EXPECT_NE(pixels.at<cv::Vec3b>(25, 128), cv::Vec3b(255, 255, 255));
  EXPECT_NE(pixels.at<cv::Vec3b>(229, 128), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(pixels.at<cv::Vec3b>(230, 128), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(pixels.at<cv::Vec3b>(255, 0), cv::Vec3b(255, 255, 255));
}

TEST(ResizeStageTest, BorderIsTheAreaResizeOnAWhiteCanvas) {
  // Downscaling resizes straight into the canvas; upscaling pads afterwards. Both
  // must equal resizing first and padding with copyMakeBorder.
  for (const auto& [width, height] : std::vector<std::pair<int, int>>{
           {1000, 800}, {801, 1203}, {257, 999}, {300, 300}, {100, 50}}) {
    const Record record = Resize({{"mode", "border"}}, WithImage(width, height));
    const cv::Mat& pixels = FindImage(record)->pixels();
    const ScaledSize scaled = ScaleForMode(width, height, 256, ResizeMode::kBorder);
    cv::Mat resized;
    if (width > 256 || height > 256) {
      resized = AreaResize(Gradient(width, height), {scaled.width, scaled.height});
    } else {
      cv::resize(Gradient(width, height), resized, {scaled.width, scaled.height}, 0, 0,
                 cv::INTER_LANCZOS4);
    }
    const int pad_h = 256 - resized.rows;
    const int pad_w = 256 - resized.cols;
    cv::Mat expected;
    cv::copyMakeBorder(resized, expected, pad_h / 2, pad_h - pad_h / 2, pad_w / 2,
                       pad_w - pad_w / 2, cv::BORDER_CONSTANT, cv::Scalar(255, 255, 255));
    ASSERT_EQ(pixels.size(), expected.size()) << width << "x" << height;
    EXPECT_EQ(testing::MaxDifference(pixels, expected), 0.0) << width << "x" << height;
  }
}

TEST(ResizeStageTest, CenterCropKeepsTheMiddle) {
  // 300x100 with a marker column in the middle: the crop must contain it.
  Record record(1, "u");
  cv::Mat image(100, 300, CV_8UC3, cv::Scalar(0, 0, 0));
  image(cv::Rect(145, 0, 10, 100)).setTo(cv::Scalar(255, 255, 255));
  record.Set(kImageField, std::shared_ptr<const Payload>(
                              std::make_shared<ImagePayload>(image, 300, 100)));
  record = Resize({{"mode", "center_crop"}, {"size", "100"}}, std::move(record));
  ASSERT_EQ(OutputSize(record), std::make_pair(100, 100));
  const cv::Mat& pixels = FindImage(record)->pixels();
  EXPECT_EQ(pixels.at<cv::Vec3b>(50, 50), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(pixels.at<cv::Vec3b>(50, 5), cv::Vec3b(0, 0, 0));
}

TEST(ResizeStageTest, ResizeOnlyIfBiggerLeavesSmallImagesAlone) {
  for (const std::string mode : {"keep_ratio", "center_crop", "border"}) {
    const Record record =
        Resize({{"mode", mode}, {"resize_only_if_bigger", "true"}}, WithImage(100, 50));
    EXPECT_EQ(OutputSize(record), std::make_pair(100, 50)) << mode;
    const Record big =
        Resize({{"mode", mode}, {"resize_only_if_bigger", "true"}}, WithImage(1000, 800));
    EXPECT_EQ(OutputSize(big).second, 256) << mode;
  }
  // keep_ratio tests the smaller side, border the larger one: 300x200 to 256.
  EXPECT_EQ(OutputSize(Resize({{"mode", "keep_ratio"}, {"resize_only_if_bigger", "true"}},
                              WithImage(300, 200))),
            std::make_pair(300, 200));
  EXPECT_EQ(OutputSize(Resize({{"mode", "border"}, {"resize_only_if_bigger", "true"}},
                              WithImage(300, 200))),
            std::make_pair(256, 256));
}

TEST(ResizeStageTest, MinSizeFilter) {
  Record record = Resize({{"min_size", "60"}}, WithImage(100, 50));
  EXPECT_EQ(record.reason(), FailureReason::kTooSmall);
  EXPECT_FALSE(record.error().empty());
  EXPECT_FALSE(Resize({{"min_size", "50"}}, WithImage(100, 50)).failed());
  // The original size counts, not the (reduced) pixels held.
  record = Resize({{"min_size", "1000"}}, WithImage(500, 400, 2000, 1600));
  EXPECT_FALSE(record.failed()) << record.error();
}

TEST(ResizeStageTest, MaxAspectRatioFilter) {
  EXPECT_EQ(Resize({{"max_aspect_ratio", "1.5"}}, WithImage(1000, 500)).reason(),
            FailureReason::kAspectRatio);
  EXPECT_EQ(Resize({{"max_aspect_ratio", "1.5"}}, WithImage(500, 1000)).reason(),
            FailureReason::kAspectRatio);
  EXPECT_FALSE(Resize({{"max_aspect_ratio", "1.5"}}, WithImage(600, 500)).failed());
  EXPECT_FALSE(Resize({{"max_aspect_ratio", "2"}}, WithImage(1000, 500)).failed());
  EXPECT_FALSE(Resize({}, WithImage(5000, 10)).failed());  // off by default
}

TEST(ResizeStageTest, NoImageFails) {
  Record record(1, "u");
  ResizeStage(ResizeOptions{}).ProcessOne(record);
  EXPECT_EQ(record.reason(), FailureReason::kStage);
}

TEST(ResizeStageTest, KeepsOriginalSizeInPayload) {
  const Record record = Resize({}, WithImage(500, 400, 2000, 1600));
  const ImagePayload* image = FindImage(record);
  ASSERT_NE(image, nullptr);
  EXPECT_EQ(image->original_width(), 2000);
  EXPECT_EQ(image->original_height(), 1600);
  EXPECT_EQ(image->height(), 256);
}

TEST(ResizeStageTest, OptionValidation) {
  EXPECT_TRUE(BuildImageStage("resize", {{"size", "512"},
                                         {"mode", "border"},
                                         {"min_size", "10"},
                                         {"max_aspect_ratio", "3"},
                                         {"resize_only_if_bigger", "true"}})
                  .ok());
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"size", "0"},
           {"size", "abc"},
           {"mode", "stretch"},
           {"min_size", "-1"},
           {"max_aspect_ratio", "0.5"},
           {"max_aspect_ratio", "-2"},
           {"resize_only_if_bigger", "maybe"},
           {"colour", "red"}}) {
    const auto stage = BuildImageStage("resize", {{key, value}});
    ASSERT_FALSE(stage.ok()) << key << "=" << value;
    EXPECT_NE(stage.status().ToString().find(key), std::string::npos)
        << stage.status().ToString();
  }
}

}  // namespace
}  // namespace sluice
