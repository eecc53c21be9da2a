// Test helpers for the faces stage: building it as a pipeline would, and dlib's
// annotated face photos. Test-only; not thread-safe.
#ifndef SLUICE_STAGES_FACES_TEST_UTIL_H_
#define SLUICE_STAGES_FACES_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <utility>

#include "sluice/record.h"
#include "sluice/stage.h"
#include "src/stages/faces_stage.h"
#include "src/stages/image.h"
#include "src/stages/map_stage_options_test_util.h"

namespace sluice::testing {

// The PASCAL VOC photos and their face annotations (testing.xml, training.xml)
// shipped with dlib's examples (Debian package libdlib19.1).
inline constexpr char kDlibFacesDir[] = "/usr/share/doc/libdlib19.1/examples/faces";

// Builds a faces stage through the registry: the factory's error, else Finish()'s,
// else the stage.
inline Result<std::unique_ptr<FacesStage>> BuildFacesStage(
    std::map<std::string, std::string> values) {
  StageRegistry registry;
  SLUICE_RETURN_IF_ERROR(RegisterFaceStages(registry));
  MapStageOptions options(std::move(values));
  auto stage = (*registry.Find("faces"))(options);
  if (!stage.ok()) return stage.status();
  SLUICE_RETURN_IF_ERROR(options.Finish());
  return std::unique_ptr<FacesStage>(static_cast<FacesStage*>(stage->release()));
}

// One of dlib's example photos, decoded as the decode stage would (8-bit BGR).
inline cv::Mat LoadDlibPhoto(const std::string& file) {
  cv::Mat image = cv::imread(std::string(kDlibFacesDir) + "/" + file, cv::IMREAD_COLOR);
  EXPECT_FALSE(image.empty()) << "cannot read " << kDlibFacesDir << "/" << file
                              << " (install libdlib19.1: scripts/install-deps.sh)";
  return image;
}

// A record holding `pixels` as its image, of original size `width` x `height`
// (0: the pixels' size).
inline Record RecordWithImage(cv::Mat pixels, std::int64_t width = 0,
                              std::int64_t height = 0) {
  Record record(1, "u");
  if (width == 0) width = pixels.cols;
  if (height == 0) height = pixels.rows;
  record.Set(kImageField, std::shared_ptr<const Payload>(std::make_shared<ImagePayload>(
                              std::move(pixels), width, height)));
  return record;
}

// Intersection over union of two boxes.
inline double IoU(const cv::Rect& a, const cv::Rect& b) {
  const double overlap = (a & b).area();
  const double either = a.area() + b.area() - overlap;
  return either > 0 ? overlap / either : 0;
}

}  // namespace sluice::testing

#endif  // SLUICE_STAGES_FACES_TEST_UTIL_H_
