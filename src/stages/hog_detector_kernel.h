// The entry points of the two builds of src/stages/hog_detector_kernel.cc. Internal
// to src/stages/hog_detector.cc: call DetectFacesHog() (src/stages/hog_detector.h).
#ifndef SLUICE_STAGES_HOG_DETECTOR_KERNEL_H_
#define SLUICE_STAGES_HOG_DETECTOR_KERNEL_H_

#include <opencv2/core.hpp>
#include <vector>

#include "src/stages/hog_detector.h"

namespace sluice::hog_kernel {

// Same contract as DetectFacesHog(). Every symbol of the AVX2 build is made local at
// build time except those of namespace avx2 (CMakeLists.txt): keep its entry points
// there.
namespace baseline {
std::vector<FaceDetection> DetectFaces(const cv::Mat& image, int upsample,
                                       double threshold);
}  // namespace baseline

namespace avx2 {
std::vector<FaceDetection> DetectFaces(const cv::Mat& image, int upsample,
                                       double threshold);
}  // namespace avx2

}  // namespace sluice::hog_kernel

#endif  // SLUICE_STAGES_HOG_DETECTOR_KERNEL_H_
