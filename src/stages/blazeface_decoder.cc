#include "src/stages/blazeface_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>

namespace sluice {
namespace {

std::vector<BlazeFaceAnchor> MakeAnchors() {
  std::vector<BlazeFaceAnchor> anchors;
  anchors.reserve(kBlazeFaceAnchors);
  struct Grid {
    int cells, per_cell;
  };
  for (const Grid grid : {Grid{16, 2}, Grid{8, 6}}) {
    for (int y = 0; y < grid.cells; ++y) {
      for (int x = 0; x < grid.cells; ++x) {
        for (int a = 0; a < grid.per_cell; ++a) {
          anchors.push_back({(static_cast<float>(x) + 0.5f) / static_cast<float>(grid.cells),
                             (static_cast<float>(y) + 0.5f) / static_cast<float>(grid.cells)});
        }
      }
    }
  }
  return anchors;
}

float Sigmoid(float logit) {
  const float clipped = std::clamp(logit, -100.0f, 100.0f);
  return 1.0f / (1.0f + std::exp(-clipped));
}

float IoU(const cv::Rect2f& a, const cv::Rect2f& b) {
  const float intersection = (a & b).area();
  const float united = a.area() + b.area() - intersection;
  return united > 0 ? intersection / united : 0.0f;
}

}  // namespace

const std::vector<BlazeFaceAnchor>& BlazeFaceAnchors() {
  static const std::vector<BlazeFaceAnchor> anchors = MakeAnchors();
  return anchors;
}

bool BlazeFaceOutputsValid(std::span<const float> scores,
                           std::span<const float> regressors) {
  return scores.size() == static_cast<std::size_t>(kBlazeFaceAnchors) &&
         regressors.size() ==
             static_cast<std::size_t>(kBlazeFaceAnchors) * kBlazeFaceRegressors;
}

std::vector<BlazeFaceDetection> DecodeBlazeFace(std::span<const float> scores,
                                                std::span<const float> regressors,
                                                float score_threshold, float nms_iou) {
  if (!BlazeFaceOutputsValid(scores, regressors)) return {};
  const std::vector<BlazeFaceAnchor>& anchors = BlazeFaceAnchors();
  constexpr float kSize = kBlazeFaceInputSize;

  std::vector<BlazeFaceDetection> candidates;
  for (int i = 0; i < kBlazeFaceAnchors; ++i) {
    const float score = Sigmoid(scores[static_cast<std::size_t>(i)]);
    if (!(score >= score_threshold)) continue;  // also drops NaN (a broken model)
    const float* r = &regressors[static_cast<std::size_t>(i) * kBlazeFaceRegressors];
    const float cx = anchors[static_cast<std::size_t>(i)].cx * kSize;
    const float cy = anchors[static_cast<std::size_t>(i)].cy * kSize;
    BlazeFaceDetection d;
    d.score = score;
    const float w = r[2], h = r[3];
    d.box = cv::Rect2f(cx + r[0] - w / 2, cy + r[1] - h / 2, w, h);
    for (int k = 0; k < kBlazeFaceKeypoints; ++k) {
      d.keypoints[static_cast<std::size_t>(k)] = {cx + r[4 + 2 * k], cy + r[5 + 2 * k]};
    }
    if (w > 0 && h > 0) candidates.push_back(d);
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const BlazeFaceDetection& a, const BlazeFaceDetection& b) {
                     return a.score > b.score;
                   });

  std::vector<BlazeFaceDetection> merged;
  std::vector<bool> taken(candidates.size(), false);
  for (std::size_t best = 0; best < candidates.size(); ++best) {
    if (taken[best]) continue;
    float weight = 0, x = 0, y = 0, w = 0, h = 0;
    std::array<cv::Point2f, kBlazeFaceKeypoints> keypoints{};
    for (std::size_t j = best; j < candidates.size(); ++j) {
      if (taken[j]) continue;
      const BlazeFaceDetection& c = candidates[j];
      if (j != best && IoU(candidates[best].box, c.box) <= nms_iou) continue;
      taken[j] = true;
      weight += c.score;
      x += c.score * c.box.x;
      y += c.score * c.box.y;
      w += c.score * c.box.width;
      h += c.score * c.box.height;
      for (std::size_t k = 0; k < keypoints.size(); ++k) {
        keypoints[k] += c.score * c.keypoints[k];
      }
    }
    BlazeFaceDetection d;
    d.score = candidates[best].score;
    d.box = cv::Rect2f(x / weight, y / weight, w / weight, h / weight);
    for (std::size_t k = 0; k < keypoints.size(); ++k) {
      d.keypoints[k] = keypoints[k] * (1.0f / weight);
    }
    merged.push_back(d);
  }
  return merged;
}

}  // namespace sluice
