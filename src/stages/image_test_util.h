// Test helpers for the image stages: in-memory encoded images. Test-only; not
// thread-safe.
#ifndef SLUICE_STAGES_IMAGE_TEST_UTIL_H_
#define SLUICE_STAGES_IMAGE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <utility>
#include <vector>

#include "sluice/record.h"
#include "sluice/stage.h"
#include "src/stages/image_stages.h"
#include "src/stages/map_stage_options_test_util.h"

namespace sluice::testing {

// Builds an image stage through the registry, as a pipeline would: the factory's
// error, else Finish()'s, else the stage.
inline Result<std::unique_ptr<Stage>> BuildImageStage(
    const std::string& type, std::map<std::string, std::string> values) {
  StageRegistry registry;
  SLUICE_RETURN_IF_ERROR(RegisterImageStages(registry));
  const StageFactory* factory = registry.Find(type);
  if (factory == nullptr) return NotFound("no stage " + type);
  MapStageOptions options(std::move(values));
  auto stage = factory->operator()(options);
  if (!stage.ok()) return stage.status();
  SLUICE_RETURN_IF_ERROR(options.Finish());
  return stage;
}

// `image` encoded by OpenCV; `ext` is ".jpg", ".png", ".webp", ".bmp", ".tiff".
inline Bytes Encode(const cv::Mat& image, const std::string& ext,
                    const std::vector<int>& params = {}) {
  std::vector<std::uint8_t> out;
  EXPECT_TRUE(cv::imencode(ext, image, out, params)) << ext;
  return out;
}

// The largest difference between two images of one size and type, over every
// channel of every pixel.
inline double MaxDifference(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat difference;
  cv::absdiff(a, b, difference);
  double max = 0;
  cv::minMaxLoc(difference.reshape(1), nullptr, &max);
  return max;
}

// A BGR image with a horizontal gradient, so that resizing has something to do.
inline cv::Mat Gradient(int width, int height) {
  cv::Mat image(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      image.at<cv::Vec3b>(y, x) =
          cv::Vec3b(static_cast<std::uint8_t>(x * 255 / width),
                    static_cast<std::uint8_t>(y * 255 / height), 90);
    }
  }
  return image;
}

}  // namespace sluice::testing

#endif  // SLUICE_STAGES_IMAGE_TEST_UTIL_H_
