// Face detection with MediaPipe's BlazeFace full-range network (ONNX, run by
// OpenCV DNN), the CNN alternative to the HOG detector (src/stages/hog_detector.h).
//
// How it detects: the image is letterboxed into the network's 256 x 256 input (its
// longer side scaled to 256, INTER_AREA when shrinking and INTER_LINEAR when
// enlarging, centred, the rest padded with mid-gray, which is 0 after the input's
// scaling of RGB to [-1, 1]); one forward gives a score and 16 regressors per
// anchor, which src/stages/blazeface_decoder.h decodes and merges; the boxes and
// keypoints are then mapped from the input back to the image's pixels.
//
// The model file comes from a pinned npm package that scripts/install-deps.sh
// fetches and checks (models/blazeface.lock): DefaultBlazeFaceModelPath(). Load()
// reads it once and runs one forward on a blank input, so that a missing, truncated
// or foreign file fails when the pipeline is built, not on every item.
//
// A cv::dnn::Net must not run two forwards at once, and parsing one takes a few
// milliseconds: each thread that detects borrows a network from a pool
// (src/stages/idle_pool.h), parsed from the file's bytes in memory when none is idle.
//
// One image per forward: the exported graph fixes the batch at 1 (OpenCV 4.6 refuses
// a 2-image input: "Inconsistent shape for ConcatLayer"), so a chunk's images cannot
// share a forward.
//
// Thread-safety: Detect() may be called concurrently.
#ifndef SLUICE_STAGES_BLAZEFACE_DETECTOR_H_
#define SLUICE_STAGES_BLAZEFACE_DETECTOR_H_

#include <array>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <string>
#include <vector>

#include "sluice/status.h"
#include "src/stages/blazeface_decoder.h"
#include "src/stages/idle_pool.h"

namespace sluice {

// Where scripts/fetch-models.sh installs the model: $SLUICE_DATA_DIR/models/... when
// SLUICE_DATA_DIR is set, else /usr/local/share/sluice/models/...
std::string DefaultBlazeFaceModelPath();

class BlazeFaceDetector {
 public:
  // Reads and checks the ONNX model at `path`. Fails with InvalidArgument naming the
  // file, and the install step, when it is missing, unreadable, not a network OpenCV
  // can load, or a network without BlazeFace's inputs and outputs.
  static Result<std::unique_ptr<BlazeFaceDetector>> Load(const std::string& path);

  // Faces in `image` (CV_8UC3 BGR or CV_8UC1 gray, not empty) scoring at least
  // `score_threshold` (0..1), merged at `nms_iou`; boxes and keypoints in the
  // image's pixels (they may reach past its edges). Best first. Throws what OpenCV
  // throws (cv::Exception), or std::runtime_error when a new network cannot be made.
  std::vector<BlazeFaceDetection> Detect(const cv::Mat& image, float score_threshold,
                                         float nms_iou) const;

 private:
  // Which of the network's outputs is which (their order is the exporter's).
  struct OutputLayout {
    std::vector<std::string> names;  // as getUnconnectedOutLayersNames() gives them
    int scores_16 = -1, scores_8 = -1;          // (1, 512, 1) and (1, 384, 1)
    int regressors_16 = -1, regressors_8 = -1;  // (1, 512, 16) and (1, 384, 16)
  };

  BlazeFaceDetector(std::string model, OutputLayout layout);

  // A network parsed from model_; nullptr if OpenCV refuses it.
  std::unique_ptr<cv::dnn::Net> Parse() const;

  const std::string model_;  // the ONNX file's bytes
  const OutputLayout layout_;
  mutable IdlePool<cv::dnn::Net> pool_;  // networks parsed from model_
};

}  // namespace sluice

#endif  // SLUICE_STAGES_BLAZEFACE_DETECTOR_H_
