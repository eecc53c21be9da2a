// HOG face detection: dlib's frontal face detector (dlib::get_frontal_face_detector,
// no model file), in the fastest build the CPU can run.
//
// The dlib code (src/stages/hog_detector_kernel.cc) is compiled twice, at -O3 in
// every build type: once for baseline x86-64 and once with AVX2 and FMA, which
// dlib's HOG feature extraction and filtering use when the compiler enables them.
// DetectFacesHog() picks the AVX2 build when the CPU supports it. See docs/faces.md
// for how the two builds are kept apart at link time.
//
// Thread-safety: DetectFacesHog() may be called from any number of threads at once.
// A dlib detector must not be shared by threads while it runs, so each thread keeps
// its own, copied on its first call from a model built once per process and build
// (the first call of the process takes about a second), and freed when the thread
// exits.
#ifndef SLUICE_STAGES_HOG_DETECTOR_H_
#define SLUICE_STAGES_HOG_DETECTOR_H_

#include <cstdint>
#include <opencv2/core.hpp>
#include <string_view>
#include <vector>

namespace sluice {

// One detected face: its box in the pixel coordinates of the image searched (it may
// extend past the image's edges), the detector's score (higher is surer), and the
// landmarks the detector gives (BlazeFace: six, see src/stages/faces_stage.h; none
// for HOG and Haar).
struct FaceDetection {
  cv::Rect box;
  double score = 0;
  std::vector<cv::Point> landmarks;
};

// The builds of the dlib code.
enum class HogBuild : std::uint8_t {
  kBaseline,  // x86-64 baseline (SSE2): runs everywhere
  kAvx2,      // AVX2 + FMA: compiled on x86-64 only, run only where the CPU has both
};

// "baseline" or "avx2".
std::string_view HogBuildName(HogBuild build);

// True if `build` was compiled in and the CPU can run it.
bool HogBuildSupported(HogBuild build);

// The fastest supported build.
HogBuild BestHogBuild();

// Finds faces in `image` (CV_8UC1 gray or CV_8UC3 BGR) after enlarging it
// `upsample` times by 2 (dlib::pyramid_up; each time finds faces half as small, at
// four times the cost). The HOG window is 80x80 pixels, so faces under about
// 80 / 2^upsample pixels are missed. `threshold` is added to the detector's own
// threshold: negative finds more faces, positive fewer. Boxes are mapped back to
// `image`'s coordinates and sorted by descending score.
// REQUIRES: 0 <= upsample <= 2; HogBuildSupported(build).
std::vector<FaceDetection> DetectFacesHog(const cv::Mat& image, int upsample,
                                          double threshold,
                                          HogBuild build = BestHogBuild());

}  // namespace sluice

#endif  // SLUICE_STAGES_HOG_DETECTOR_H_
