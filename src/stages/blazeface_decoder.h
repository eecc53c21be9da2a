// The outputs of MediaPipe's BlazeFace full-range ("back") detector, 256 x 256 input,
// turned into face boxes: anchors, decoding and score-weighted non-maximum
// suppression. No inference here: the network runs elsewhere (OpenCV DNN), this is
// the arithmetic after it, a pure function that tests can drive with synthetic
// outputs.
//
// The network's outputs, per anchor: one score logit, and 16 regressors in input
// pixels: the box centre's offset from the anchor (dx, dy), the box size (w, h), and
// six keypoints' offsets from the anchor (x, y each: eyes, nose, mouth, ears).
// Anchors (MediaPipe's SSD anchor options for this model: strides 16, 32, 32, 32,
// offset 0.5, fixed size): a 16 x 16 grid with 2 anchors per cell, then an 8 x 8
// grid with 6 per cell, 896 in all, in row-major order (y, x, anchor); each anchor's
// centre is ((x + 0.5) / cells, (y + 0.5) / cells) of the input. The network gives
// the two grids as separate outputs; the decoder takes them concatenated (the 16 x 16
// grid's 512 anchors first).
//
// Decoding: score = sigmoid(logit) (logits clipped to +-100); centre = anchor centre
// x input size + (dx, dy); keypoint = anchor centre x input size + its offset.
// Suppression: detections by descending score; the best one and every remaining one
// overlapping it by more than `nms_iou` (intersection over union) form a cluster,
// merged into one detection whose box and keypoints are the score-weighted mean of
// the cluster's and whose score is the best one's.
//
// Pure functions, thread-safe.
#ifndef SLUICE_STAGES_BLAZEFACE_DECODER_H_
#define SLUICE_STAGES_BLAZEFACE_DECODER_H_

#include <array>
#include <opencv2/core.hpp>
#include <span>
#include <vector>

namespace sluice {

inline constexpr int kBlazeFaceInputSize = 256;
inline constexpr int kBlazeFaceAnchors = 16 * 16 * 2 + 8 * 8 * 6;  // 896
inline constexpr int kBlazeFaceRegressors = 16;                    // per anchor
inline constexpr int kBlazeFaceKeypoints = 6;

// An anchor's centre, as a fraction of the input's width and height.
struct BlazeFaceAnchor {
  float cx = 0, cy = 0;
};

// The 896 anchors, in the network's output order.
const std::vector<BlazeFaceAnchor>& BlazeFaceAnchors();

struct BlazeFaceDetection {
  cv::Rect2f box;  // input pixels
  std::array<cv::Point2f, kBlazeFaceKeypoints> keypoints;  // input pixels
  float score = 0;
};

// Decodes the network's outputs: `scores` holds kBlazeFaceAnchors logits,
// `regressors` kBlazeFaceAnchors x kBlazeFaceRegressors values, both in anchor order.
// Keeps detections scoring at least `score_threshold`, merged as above. Best first.
// An empty result if the sizes are wrong (the caller checks them: see
// BlazeFaceOutputsValid).
std::vector<BlazeFaceDetection> DecodeBlazeFace(std::span<const float> scores,
                                                std::span<const float> regressors,
                                                float score_threshold, float nms_iou);

// True when the spans have the sizes DecodeBlazeFace needs.
bool BlazeFaceOutputsValid(std::span<const float> scores,
                           std::span<const float> regressors);

}  // namespace sluice

#endif  // SLUICE_STAGES_BLAZEFACE_DECODER_H_
