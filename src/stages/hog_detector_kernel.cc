// The dlib half of the HOG face detector. This file is compiled twice (see
// CMakeLists.txt): as part of sluice_stages for baseline x86-64, with
// SLUICE_HOG_BUILD unset, and again with -mavx2 -mfma -DSLUICE_HOG_BUILD=avx2.
// dlib's headers pick their SIMD code (DLIB_HAVE_SSE*, DLIB_HAVE_AVX) from the
// compiler's macros, so the same source yields two detectors; only the namespace of
// the entry point differs.
//
// Both are compiled at -O3 even in Debug builds: dlib's templates at -O0 are tens of
// times slower, too slow for the sanitizer builds the tests run under.
#include "src/stages/hog_detector_kernel.h"

#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_transforms/interpolation.h>
#include <dlib/opencv/cv_image.h>

#include <algorithm>
#include <opencv2/core.hpp>
#include <vector>

#include "src/stages/hog_detector.h"

#ifndef SLUICE_HOG_BUILD
#define SLUICE_HOG_BUILD baseline
#endif

namespace sluice::hog_kernel::SLUICE_HOG_BUILD {
namespace {

// The model, built once per process: dlib decodes and decompresses it from a string
// embedded in its header and derives separable filters from it, which takes about a
// second. Never run: only copied, and concurrent copies only read it.
const dlib::frontal_face_detector& Model() {
  static const dlib::frontal_face_detector model = dlib::get_frontal_face_detector();
  return model;
}

// The calling thread's detector, a copy of the model. dlib's object_detector keeps
// per-call scratch state (the feature pyramid) in the object, so one object must not
// run on two threads at once.
dlib::frontal_face_detector& ThreadDetector() {
  thread_local dlib::frontal_face_detector detector = Model();
  return detector;
}

// Runs the detector on `image` (any dlib image type) enlarged `upsample` times,
// and maps the boxes back to `image`'s coordinates.
template <typename Image>
std::vector<FaceDetection> Detect(const Image& image, int upsample, double threshold) {
  dlib::frontal_face_detector& detector = ThreadDetector();
  std::vector<dlib::rect_detection> found;
  const dlib::pyramid_down<2> pyramid;
  if (upsample <= 0) {
    detector(image, found, threshold);
  } else {
    dlib::array2d<typename dlib::image_traits<Image>::pixel_type> enlarged;
    dlib::pyramid_up(image, enlarged, pyramid);
    for (int i = 1; i < upsample; ++i) dlib::pyramid_up(enlarged, pyramid);
    detector(enlarged, found, threshold);
  }
  std::vector<FaceDetection> faces;
  faces.reserve(found.size());
  for (const dlib::rect_detection& detection : found) {
    // rect_down(r, n) is the exact inverse of n pyramid_up steps; converting the
    // drectangle back to a rectangle rounds its corners.
    dlib::rectangle r = detection.rect;
    if (upsample > 0) {
      r = dlib::rectangle(pyramid.rect_down(r, static_cast<unsigned>(upsample)));
    }
    faces.push_back(
        FaceDetection{cv::Rect(static_cast<int>(r.left()), static_cast<int>(r.top()),
                               static_cast<int>(r.width()), static_cast<int>(r.height())),
                      detection.detection_confidence, {}});
  }
  std::stable_sort(
      faces.begin(), faces.end(),
      [](const FaceDetection& a, const FaceDetection& b) { return a.score > b.score; });
  return faces;
}

}  // namespace

std::vector<FaceDetection> DetectFaces(const cv::Mat& image, int upsample,
                                       double threshold) {
  // cv_image wraps the matrix's pixels without copying them.
  if (image.type() == CV_8UC1) {
    return Detect(dlib::cv_image<unsigned char>(image), upsample, threshold);
  }
  return Detect(dlib::cv_image<dlib::bgr_pixel>(image), upsample, threshold);
}

}  // namespace sluice::hog_kernel::SLUICE_HOG_BUILD
