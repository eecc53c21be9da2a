// decode + resize give img2dataset's output geometry: the same output size, the same
// crop and the same padding, for every mode and size, whatever scale decode reduced a
// JPEG to. The oracle below is img2dataset's resizer written out from its source
// (img2dataset/resizer.py, Resizer.__call__, over albumentations' smallest_max_size,
// longest_max_size, center_crop and pad), independently of resize_stage.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <opencv2/core.hpp>
#include <random>
#include <string>
#include <vector>

#include "src/stages/decode_stage.h"
#include "src/stages/image.h"
#include "src/stages/image_test_util.h"
#include "src/stages/jpeg_codec.h"
#include "src/stages/resize_stage.h"

namespace sluice {
namespace {

using testing::Encode;
using testing::Gradient;

// Python's round(): to the nearest integer, halves to the even one.
int PythonRound(double x) {
  double whole = std::floor(x);
  const double fraction = x - whole;
  if (fraction > 0.5 || (fraction == 0.5 && std::fmod(whole, 2.0) != 0.0)) whole += 1;
  return static_cast<int>(whole);
}

// What img2dataset makes of a width x height image: the output size, and where the
// picture lies in it (border: the rectangle inside the white frame) or which part
// of the scaled picture it keeps (center_crop: the crop's offset).
struct Img2datasetGeometry {
  int width = 0, height = 0;      // the output
  int scaled_width = 0, scaled_height = 0;  // after the scaling step
  int picture_x = 0, picture_y = 0;         // border: top-left of the picture
  int crop_x = 0, crop_y = 0;               // center_crop: offset in the scaled picture
};

Img2datasetGeometry Img2dataset(int w, int h, int size, ResizeMode mode,
                                bool resize_only_if_bigger) {
  Img2datasetGeometry g{w, h, w, h};
  // albumentations _func_max_size: scale = max_size / float(func(h, w)); if scale
  // != 1.0: each side = round(side * scale).
  const auto max_size = [&](int reference) {
    const double scale = size / static_cast<double>(reference);
    if (scale != 1.0) {
      g.scaled_width = PythonRound(w * scale);
      g.scaled_height = PythonRound(h * scale);
    }
  };
  switch (mode) {
    case ResizeMode::kNo:
      return g;
    case ResizeMode::kKeepRatio:
    case ResizeMode::kCenterCrop: {
      const bool downscale = std::min(w, h) > size;
      if (resize_only_if_bigger && !downscale) return g;
      max_size(std::min(w, h));  // smallest_max_size
      g.width = g.scaled_width;
      g.height = g.scaled_height;
      if (mode == ResizeMode::kCenterCrop) {  // get_center_crop_coords
        g.crop_x = (g.scaled_width - size) / 2;
        g.crop_y = (g.scaled_height - size) / 2;
        g.width = g.height = size;
      }
      return g;
    }
    case ResizeMode::kKeepRatioLargest:
    case ResizeMode::kBorder: {
      const bool downscale = std::max(w, h) > size;
      if (resize_only_if_bigger && !downscale) return g;
      max_size(std::max(w, h));  // longest_max_size
      g.width = g.scaled_width;
      g.height = g.scaled_height;
      if (mode == ResizeMode::kBorder) {  // pad: h_pad_top = int((size - rows) / 2.0)
        g.picture_x = static_cast<int>((size - g.scaled_width) / 2.0);
        g.picture_y = static_cast<int>((size - g.scaled_height) / 2.0);
        g.width = g.height = size;
      }
      return g;
    }
  }
  return g;
}

const char* ModeName(ResizeMode mode) {
  switch (mode) {
    case ResizeMode::kNo: return "no";
    case ResizeMode::kKeepRatio: return "keep_ratio";
    case ResizeMode::kKeepRatioLargest: return "keep_ratio_largest";
    case ResizeMode::kCenterCrop: return "center_crop";
    case ResizeMode::kBorder: return "border";
  }
  return "?";
}

constexpr ResizeMode kModes[] = {ResizeMode::kNo, ResizeMode::kKeepRatio,
                                 ResizeMode::kKeepRatioLargest, ResizeMode::kCenterCrop,
                                 ResizeMode::kBorder};

// The pixels decode holds for a width x height JPEG when this resize follows it.
cv::Size DecodedSize(int w, int h, const ResizeStage& resize) {
  const DecodeReduction needs = resize.DecodeNeeds();
  const int m = JpegScaleEighths(needs.longer_side ? std::max(w, h) : std::min(w, h),
                                 needs.side_at_least);
  return {(w * m + 7) / 8, (h * m + 7) / 8};
}

// Resizes `pixels`, standing for a width x height original.
Record Resized(cv::Mat pixels, int w, int h, ResizeStage& resize) {
  Record record(1, "u");
  record.Set(kImageField, std::shared_ptr<const Payload>(
                              std::make_shared<ImagePayload>(std::move(pixels), w, h)));
  resize.ProcessOne(record);
  return record;
}

// A picture whose every pixel says where it is: x in channels 0 and 1, y in 2.
cv::Mat Coordinates(int w, int h) {
  cv::Mat image(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y) {
    cv::Vec3b* row = image.ptr<cv::Vec3b>(y);
    for (int x = 0; x < w; ++x) {
      row[x] = cv::Vec3b(static_cast<std::uint8_t>(x % 256), static_cast<std::uint8_t>(x / 256),
                         static_cast<std::uint8_t>(y % 256));
    }
  }
  return image;
}

// Checks the output of resizing a w x h original with `resize`, against the oracle:
//  - from the pixels a reduced decode holds (solid black): the output size, and in
//    border mode the black picture exactly inside the white frame;
//  - from pixels already at the scaled size (so the stage has nothing to resize if
//    it agrees on that size) that say where they are: the crop offset and the
//    padding, to the pixel.
void ExpectImg2datasetGeometry(int w, int h, const ResizeOptions& options) {
  ResizeStage resize(options);
  const Img2datasetGeometry want =
      Img2dataset(w, h, options.size, options.mode, options.resize_only_if_bigger);
  const std::string where = std::to_string(w) + "x" + std::to_string(h) + " " +
                            ModeName(options.mode) + " " + std::to_string(options.size) +
                            (options.resize_only_if_bigger ? " only if bigger" : "");

  const Record reduced =
      Resized(cv::Mat(DecodedSize(w, h, resize), CV_8UC3, cv::Scalar::all(0)), w, h, resize);
  ASSERT_FALSE(reduced.failed()) << where << ": " << reduced.error();
  const cv::Mat& out = FindImage(reduced)->pixels();
  ASSERT_EQ(out.cols, want.width) << where;
  ASSERT_EQ(out.rows, want.height) << where;
  EXPECT_EQ(FindImage(reduced)->original_width(), w) << where;
  if (options.mode == ResizeMode::kBorder && want.width == options.size &&
      (want.scaled_width < options.size || want.scaled_height < options.size)) {
    const cv::Rect picture(want.picture_x, want.picture_y, want.scaled_width,
                           want.scaled_height);
    cv::Mat expected(out.size(), CV_8UC3, cv::Scalar::all(255));
    expected(picture).setTo(cv::Scalar::all(0));
    ASSERT_EQ(testing::MaxDifference(out, expected), 0) << where << ": picture misplaced";
  }

  const cv::Mat scaled = Coordinates(want.scaled_width, want.scaled_height);
  const Record placed = Resized(scaled, w, h, resize);
  ASSERT_FALSE(placed.failed()) << where << ": " << placed.error();
  const cv::Mat& at = FindImage(placed)->pixels();
  ASSERT_EQ(at.size(), cv::Size(want.width, want.height)) << where;
  cv::Mat expected(at.size(), CV_8UC3, cv::Scalar::all(255));
  if (options.mode == ResizeMode::kCenterCrop && want.width == options.size) {
    expected = scaled(cv::Rect(want.crop_x, want.crop_y, want.width, want.height));
  } else {
    scaled.copyTo(expected(cv::Rect(want.picture_x, want.picture_y, want.scaled_width,
                                    want.scaled_height)));
  }
  ASSERT_EQ(testing::MaxDifference(at, expected), 0) << where << ": placement differs";
}

ResizeOptions Options(ResizeMode mode, int size = 256, bool only_if_bigger = false) {
  ResizeOptions options;
  options.mode = mode;
  options.size = size;
  options.resize_only_if_bigger = only_if_bigger;
  return options;
}

TEST(ResizeGeometryTest, OracleOnTheReportedCases) {
  // Worked out by hand from the formulas, so that the oracle itself is checked.
  struct Case {
    int w, h;
    ResizeMode mode;
    Img2datasetGeometry want;  // width, height, scaled, picture, crop
  };
  using M = ResizeMode;
  const std::vector<Case> cases = {
      {1200, 200, M::kKeepRatio, {1536, 256, 1536, 256}},
      {1200, 200, M::kKeepRatioLargest, {256, 43, 256, 43}},
      {1200, 200, M::kCenterCrop, {256, 256, 1536, 256, 0, 0, 640, 0}},
      {1200, 200, M::kBorder, {256, 256, 256, 43, 0, 106}},
      {200, 1200, M::kBorder, {256, 256, 43, 256, 106, 0}},
      {100, 80, M::kKeepRatio, {320, 256, 320, 256}},
      {100, 80, M::kBorder, {256, 256, 256, 205, 0, 25}},
      {513, 512, M::kKeepRatio, {256, 256, 256, 256}},  // 256.5 rounds to 256
      {513, 512, M::kKeepRatioLargest, {256, 256, 256, 256}},
      {515, 512, M::kKeepRatio, {258, 256, 258, 256}},  // 257.5 rounds to 258
      {515, 512, M::kCenterCrop, {256, 256, 258, 256, 0, 0, 1, 0}},
      {515, 512, M::kBorder, {256, 256, 256, 255, 0, 0}},
      {1001, 803, M::kKeepRatio, {319, 256, 319, 256}},
      {1001, 803, M::kBorder, {256, 256, 256, 205, 0, 25}},
      {958, 821, M::kKeepRatio, {299, 256, 299, 256}},
      {958, 821, M::kCenterCrop, {256, 256, 299, 256, 0, 0, 21, 0}},
      {958, 821, M::kBorder, {256, 256, 256, 219, 0, 18}},
      {521, 680, M::kKeepRatio, {256, 334, 256, 334}},
      {521, 680, M::kKeepRatioLargest, {196, 256, 196, 256}},
      {521, 680, M::kBorder, {256, 256, 196, 256, 30, 0}},
      {617, 459, M::kNo, {617, 459, 617, 459}},
  };
  for (const Case& c : cases) {
    const Img2datasetGeometry g = Img2dataset(c.w, c.h, 256, c.mode, false);
    const std::string where =
        std::to_string(c.w) + "x" + std::to_string(c.h) + " " + ModeName(c.mode);
    EXPECT_EQ(g.width, c.want.width) << where;
    EXPECT_EQ(g.height, c.want.height) << where;
    EXPECT_EQ(g.scaled_width, c.want.scaled_width) << where;
    EXPECT_EQ(g.scaled_height, c.want.scaled_height) << where;
    EXPECT_EQ(g.picture_x, c.want.picture_x) << where;
    EXPECT_EQ(g.picture_y, c.want.picture_y) << where;
    EXPECT_EQ(g.crop_x, c.want.crop_x) << where;
    EXPECT_EQ(g.crop_y, c.want.crop_y) << where;
  }
}

TEST(ResizeGeometryTest, ReportedCasesInEveryMode) {
  const std::vector<std::pair<int, int>> sizes = {
      {1200, 200}, {200, 1200}, {100, 80},  {513, 512}, {515, 512}, {1001, 803},
      {958, 821},  {521, 680},  {617, 459}, {256, 256}, {2048, 1536}, {1, 1}};
  for (const auto& [w, h] : sizes) {
    for (const ResizeMode mode : kModes) {
      for (const bool only_if_bigger : {false, true}) {
        ExpectImg2datasetGeometry(w, h, Options(mode, 256, only_if_bigger));
      }
    }
  }
}

TEST(ResizeGeometryTest, RandomSizesMatchImg2dataset) {
  std::mt19937 rng(20261203);
  const int target_sizes[] = {16, 64, 224, 256, 299, 384, 512};
  for (int i = 0; i < 600; ++i) {
    // Shorter sides from 1 to 1,000 px, elongated up to 1:4, either way round.
    const int shorter = 1 + static_cast<int>(rng() % 1000);
    const int longer = shorter + static_cast<int>(rng() % (3 * shorter + 1));
    const bool landscape = rng() % 2 == 0;
    const int w = landscape ? longer : shorter;
    const int h = landscape ? shorter : longer;
    const ResizeMode mode = kModes[rng() % std::size(kModes)];
    const int size = target_sizes[rng() % std::size(target_sizes)];
    ExpectImg2datasetGeometry(w, h, Options(mode, size, rng() % 4 == 0));
    if (HasFatalFailure()) return;
  }
}

// The real path: a JPEG decoded at the scale planned for the resize after it, then
// resized, has the size of the full decode resized, and nearly its pixels.
TEST(ResizeGeometryTest, ReducedJpegDecodeGivesTheFullDecodeGeometry) {
  const std::vector<std::pair<int, int>> sizes = {
      {1200, 200}, {200, 1200}, {1001, 803}, {958, 821}, {521, 680}, {513, 512},
      {515, 512},  {2048, 1536}, {1601, 1203}};
  for (const auto& [w, h] : sizes) {
    const Bytes jpeg = Encode(Gradient(w, h), ".jpg", {cv::IMWRITE_JPEG_QUALITY, 95});
    for (const ResizeMode mode : kModes) {
      const ResizeOptions options = Options(mode);
      ResizeStage resize(options);
      const std::string where =
          std::to_string(w) + "x" + std::to_string(h) + " " + ModeName(mode);
      Record full(1, "u"), reduced(2, "u");
      full.Set("body", jpeg);
      reduced.Set("body", jpeg);
      DecodeStage full_decode({});
      DecodeStage planned_decode({});
      planned_decode.PlanFor(&resize);
      full_decode.ProcessOne(full);
      planned_decode.ProcessOne(reduced);
      ASSERT_FALSE(full.failed()) << where << ": " << full.error();
      ASSERT_FALSE(reduced.failed()) << where << ": " << reduced.error();
      EXPECT_EQ(FindImage(reduced)->pixels().size(), DecodedSize(w, h, resize)) << where;
      resize.ProcessOne(full);
      resize.ProcessOne(reduced);
      const cv::Mat& a = FindImage(full)->pixels();
      const cv::Mat& b = FindImage(reduced)->pixels();
      const Img2datasetGeometry want = Img2dataset(w, h, 256, mode, false);
      ASSERT_EQ(a.size(), cv::Size(want.width, want.height)) << where;
      ASSERT_EQ(b.size(), a.size()) << where;
      cv::Mat difference;
      cv::absdiff(a, b, difference);
      EXPECT_LE(cv::mean(difference)[0], 1.5) << where;  // a gradient: smooth
    }
  }
}

}  // namespace
}  // namespace sluice
