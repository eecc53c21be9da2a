// Haar cascade face detection (OpenCV's cv::CascadeClassifier, objdetect), the
// alternative to the HOG detector (src/stages/hog_detector.h).
//
// A CascadeClassifier must not be shared by threads while it detects, and loading
// one parses the cascade's XML (about 1 MB for the frontal face cascade). So the
// file is read once, by Load(), and each thread that detects borrows a classifier
// from a small pool, parsed from that text in memory when the pool is empty. The
// pool (src/stages/idle_pool.h) grows to the number of threads that ever detect at
// the same time.
//
// Thread-safety: Detect() may be called concurrently.
#ifndef SLUICE_STAGES_HAAR_DETECTOR_H_
#define SLUICE_STAGES_HAAR_DETECTOR_H_

#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/objdetect.hpp>
#include <string>
#include <vector>

#include "sluice/status.h"
#include "src/stages/hog_detector.h"
#include "src/stages/idle_pool.h"

namespace sluice {

inline constexpr char kDefaultHaarCascade[] =
    "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml";

class HaarFaceDetector {
 public:
  // Reads the cascade at `path`. Fails with InvalidArgument when the file cannot be
  // read or is not a cascade OpenCV can load; the message names the file.
  static Result<std::unique_ptr<HaarFaceDetector>> Load(const std::string& path);

  // Finds faces in `gray` (CV_8UC1, already histogram-equalized if wanted) at least
  // `min_size` pixels wide, scanning scales 1.1 apart and keeping detections that
  // `min_neighbors` overlapping windows agree on. The score of a face is the number
  // of windows merged into it (Haar cascades give no probability). Sorted by
  // descending score. Throws what OpenCV throws (cv::Exception), or
  // std::runtime_error if a new classifier cannot be parsed (out of memory).
  std::vector<FaceDetection> Detect(const cv::Mat& gray, int min_size,
                                    int min_neighbors) const;

 private:
  explicit HaarFaceDetector(std::string xml)
      : xml_(std::move(xml)), pool_([this] { return Parse(); }) {}

  // A classifier parsed from xml_; nullptr if OpenCV refuses it.
  std::unique_ptr<cv::CascadeClassifier> Parse() const;

  const std::string xml_;  // the cascade file's content
  mutable IdlePool<cv::CascadeClassifier> pool_;  // classifiers parsed from xml_
};

}  // namespace sluice

#endif  // SLUICE_STAGES_HAAR_DETECTOR_H_
