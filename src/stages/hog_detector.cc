#include "src/stages/hog_detector.h"

#include <vector>

#include "src/stages/hog_detector_kernel.h"

namespace sluice {

std::string_view HogBuildName(HogBuild build) {
  return build == HogBuild::kAvx2 ? "avx2" : "baseline";
}

bool HogBuildSupported(HogBuild build) {
  switch (build) {
    case HogBuild::kBaseline:
      return true;
    case HogBuild::kAvx2:
#ifdef SLUICE_HOG_AVX2
      // Checked once: the answer cannot change while the process runs.
      static const bool supported =
          __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
      return supported;
#else
      return false;
#endif
  }
  return false;
}

HogBuild BestHogBuild() {
  return HogBuildSupported(HogBuild::kAvx2) ? HogBuild::kAvx2 : HogBuild::kBaseline;
}

std::vector<FaceDetection> DetectFacesHog(const cv::Mat& image, int upsample,
                                          double threshold, HogBuild build) {
#ifdef SLUICE_HOG_AVX2
  if (build == HogBuild::kAvx2) {
    return hog_kernel::avx2::DetectFaces(image, upsample, threshold);
  }
#else
  (void)build;
#endif
  return hog_kernel::baseline::DetectFaces(image, upsample, threshold);
}

}  // namespace sluice
