#include "src/stages/blazeface_decoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <vector>

namespace sluice {
namespace {

// Network outputs where no anchor sees a face (logit -10: score 0.00005).
struct Outputs {
  std::vector<float> scores = std::vector<float>(kBlazeFaceAnchors, -10.0f);
  std::vector<float> regressors =
      std::vector<float>(static_cast<std::size_t>(kBlazeFaceAnchors) * kBlazeFaceRegressors,
                         0.0f);

  // Anchor `i` sees a face: logit, centre offset, size, and keypoint k at
  // (k, -k) pixels from the anchor.
  void Set(int i, float logit, float dx, float dy, float w, float h) {
    scores[static_cast<std::size_t>(i)] = logit;
    float* r = &regressors[static_cast<std::size_t>(i) * kBlazeFaceRegressors];
    r[0] = dx;
    r[1] = dy;
    r[2] = w;
    r[3] = h;
    for (int k = 0; k < kBlazeFaceKeypoints; ++k) {
      r[4 + 2 * k] = static_cast<float>(k);
      r[5 + 2 * k] = -static_cast<float>(k);
    }
  }
};

// The index of anchor `a` of cell (x, y) in the 16 x 16 grid, or in the 8 x 8 one.
int Fine(int x, int y, int a) { return (y * 16 + x) * 2 + a; }
int Coarse(int x, int y, int a) { return 512 + (y * 8 + x) * 6 + a; }

float Sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

TEST(BlazeFaceDecoderTest, AnchorLayout) {
  const std::vector<BlazeFaceAnchor>& anchors = BlazeFaceAnchors();
  ASSERT_EQ(anchors.size(), 896u);
  EXPECT_FLOAT_EQ(anchors[Fine(0, 0, 0)].cx, 0.5f / 16);
  EXPECT_FLOAT_EQ(anchors[Fine(0, 0, 1)].cx, 0.5f / 16);  // two per cell, same centre
  EXPECT_FLOAT_EQ(anchors[Fine(1, 0, 0)].cx, 1.5f / 16);
  EXPECT_FLOAT_EQ(anchors[Fine(0, 1, 0)].cy, 1.5f / 16);  // rows after columns
  EXPECT_FLOAT_EQ(anchors[Fine(15, 15, 1)].cx, 15.5f / 16);
  EXPECT_EQ(Fine(15, 15, 1), 511);
  EXPECT_FLOAT_EQ(anchors[Coarse(0, 0, 0)].cx, 0.5f / 8);
  EXPECT_FLOAT_EQ(anchors[Coarse(0, 0, 5)].cy, 0.5f / 8);  // six per cell
  EXPECT_FLOAT_EQ(anchors[Coarse(1, 0, 0)].cx, 1.5f / 8);
  EXPECT_FLOAT_EQ(anchors[Coarse(7, 7, 5)].cy, 7.5f / 8);
  EXPECT_EQ(Coarse(7, 7, 5), 895);
}

TEST(BlazeFaceDecoderTest, DecodesBoxesAndKeypointsInInputPixels) {
  Outputs out;
  // Cell (3, 5) of the 16 x 16 grid: anchor centre (56, 88) px.
  out.Set(Fine(3, 5, 0), 2.0f, 4, -2, 40, 48);
  // Cell (6, 1) of the 8 x 8 grid: anchor centre (208, 48) px.
  out.Set(Coarse(6, 1, 3), 1.0f, 0, 0, 64, 64);
  const std::vector<BlazeFaceDetection> faces =
      DecodeBlazeFace(out.scores, out.regressors, 0.5f, 0.3f);
  ASSERT_EQ(faces.size(), 2u);
  // Best first.
  EXPECT_FLOAT_EQ(faces[0].score, Sigmoid(2.0f));
  EXPECT_FLOAT_EQ(faces[0].box.x, 56 + 4 - 20);
  EXPECT_FLOAT_EQ(faces[0].box.y, 88 - 2 - 24);
  EXPECT_FLOAT_EQ(faces[0].box.width, 40);
  EXPECT_FLOAT_EQ(faces[0].box.height, 48);
  for (int k = 0; k < kBlazeFaceKeypoints; ++k) {
    EXPECT_FLOAT_EQ(faces[0].keypoints[static_cast<std::size_t>(k)].x, 56.0f + k);
    EXPECT_FLOAT_EQ(faces[0].keypoints[static_cast<std::size_t>(k)].y, 88.0f - k);
  }
  EXPECT_FLOAT_EQ(faces[1].score, Sigmoid(1.0f));
  EXPECT_FLOAT_EQ(faces[1].box.x, 208 - 32);
  EXPECT_FLOAT_EQ(faces[1].box.y, 48 - 32);
}

TEST(BlazeFaceDecoderTest, ThresholdDropsWeakScores) {
  Outputs out;
  out.Set(Fine(3, 5, 0), 0.1f, 0, 0, 40, 40);  // 0.525
  EXPECT_EQ(DecodeBlazeFace(out.scores, out.regressors, 0.5f, 0.3f).size(), 1u);
  EXPECT_TRUE(DecodeBlazeFace(out.scores, out.regressors, 0.6f, 0.3f).empty());
}

TEST(BlazeFaceDecoderTest, OverlappingDetectionsMergeWeightedByScore) {
  Outputs out;
  // Two anchors of one cell and the next cell see the same face; a third, apart.
  out.Set(Fine(3, 5, 0), std::log(3.0f), 0, 0, 40, 40);   // score 0.75, box x 36
  out.Set(Fine(3, 5, 1), std::log(1.0f), 4, 0, 40, 40);   // score 0.5, box x 40
  out.Set(Fine(10, 5, 0), std::log(1.5f), 0, 0, 40, 40);  // score 0.6, far right
  const std::vector<BlazeFaceDetection> faces =
      DecodeBlazeFace(out.scores, out.regressors, 0.5f, 0.3f);
  ASSERT_EQ(faces.size(), 2u);
  EXPECT_NEAR(faces[0].score, 0.75f, 1e-6);  // the cluster's best
  // x: (0.75 * 36 + 0.5 * 40) / 1.25 = 37.6
  EXPECT_NEAR(faces[0].box.x, 37.6f, 1e-4);
  EXPECT_NEAR(faces[0].box.width, 40.0f, 1e-4);
  EXPECT_NEAR(faces[0].keypoints[1].x, 56.0f + 1, 1e-4);  // the same offsets in both
  EXPECT_NEAR(faces[1].score, 0.6f, 1e-6);
  EXPECT_NEAR(faces[1].box.x, (10.5f / 16) * 256 - 20, 1e-4);

  // With a threshold above their overlap (IoU 36 / 44 = 0.82) they stay apart.
  EXPECT_EQ(DecodeBlazeFace(out.scores, out.regressors, 0.5f, 0.9f).size(), 3u);
}

TEST(BlazeFaceDecoderTest, WrongSizesAndDegenerateBoxesGiveNothing) {
  Outputs out;
  out.Set(Fine(3, 5, 0), 5.0f, 0, 0, 0, 40);  // no width
  EXPECT_TRUE(DecodeBlazeFace(out.scores, out.regressors, 0.5f, 0.3f).empty());
  std::vector<float> short_scores(100, 5.0f);
  EXPECT_FALSE(BlazeFaceOutputsValid(short_scores, out.regressors));
  EXPECT_TRUE(DecodeBlazeFace(short_scores, out.regressors, 0.5f, 0.3f).empty());
  EXPECT_TRUE(BlazeFaceOutputsValid(out.scores, out.regressors));
  // NaN logits (a broken model) score nothing rather than everything.
  out.scores.assign(out.scores.size(), std::nanf(""));
  EXPECT_TRUE(DecodeBlazeFace(out.scores, out.regressors, 0.5f, 0.3f).empty());
}

}  // namespace
}  // namespace sluice
