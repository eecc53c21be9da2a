#include "src/stages/faces_stage.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "src/stages/faces_test_util.h"
#include "src/stages/hog_detector.h"
#include "src/stages/image.h"

namespace sluice {
namespace {

using testing::BuildFacesStage;
using testing::IoU;
using testing::LoadDlibPhoto;
using testing::RecordWithImage;

// Faces of 90 to 109 pixels in a 500x375 photo: found without upsampling.
constexpr char kLargeFacesPhoto[] = "2008_002506.jpg";
// Faces of 37 to 53 pixels in a 500x332 photo: found only with upsample >= 1.
constexpr char kSmallFacesPhoto[] = "2008_002470.jpg";

// Runs a stage built from `options` on `record`.
Record RunFaces(std::map<std::string, std::string> options, Record record) {
  auto stage = BuildFacesStage(std::move(options));
  EXPECT_TRUE(stage.ok()) << stage.status().ToString();
  if (!stage.ok()) return record;
  (*stage)->ProcessOne(record);
  return record;
}

std::int64_t FaceCount(const Record& record) {
  const Value* value = record.Find("faces");
  return value == nullptr ? -1 : std::get<std::int64_t>(*value);
}

// "face_boxes" parsed back into rectangles.
std::vector<cv::Rect> Boxes(const Record& record) {
  const Value* value = record.Find("face_boxes");
  if (value == nullptr) return {};
  std::vector<cv::Rect> boxes;
  for (const auto& box : nlohmann::json::parse(std::get<JsonText>(*value).text)) {
    boxes.emplace_back(box[0].get<int>(), box[1].get<int>(), box[2].get<int>(),
                       box[3].get<int>());
  }
  return boxes;
}

std::vector<double> Scores(const Record& record) {
  const Value* value = record.Find("face_scores");
  if (value == nullptr) return {};
  return nlohmann::json::parse(std::get<JsonText>(*value).text).get<std::vector<double>>();
}

TEST(FacesStageTest, OptionValidation) {
  EXPECT_TRUE(BuildFacesStage({}).ok());
  EXPECT_TRUE(BuildFacesStage({{"detector", "hog"},
                               {"detect_size", "0"},
                               {"min_face_size", "20"},
                               {"upsample", "2"},
                               {"min_score", "-0.5"}})
                  .ok());
  EXPECT_TRUE(BuildFacesStage(
                  {{"detector", "haar"}, {"min_neighbors", "5"}, {"detect_size", "800"}})
                  .ok());
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"detector", "cnn"},
                                                        {"detect_size", "-1"},
                                                        {"detect_size", "big"},
                                                        {"min_face_size", "-5"},
                                                        {"upsample", "3"},
                                                        {"upsample", "-1"},
                                                        {"min_score", "abc"},
                                                        {"min_score", "5"},
                                                        {"min_neighbors", "-1"},
                                                        {"cascade", ""},
                                                        {"colour", "red"}}) {
    const auto stage = BuildFacesStage({{key, value}});
    ASSERT_FALSE(stage.ok()) << key << "=" << value;
    EXPECT_NE(stage.status().ToString().find(key), std::string::npos)
        << stage.status().ToString();
  }
}

TEST(FacesStageTest, MissingOrInvalidCascadeIsAnErrorNamingTheKeyAndFile) {
  const std::string missing = "/nonexistent/haarcascade_frontalface_default.xml";
  auto stage = BuildFacesStage({{"detector", "haar"}, {"cascade", missing}});
  ASSERT_FALSE(stage.ok());
  EXPECT_EQ(stage.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(stage.status().message().find("stages[1].cascade"), std::string::npos)
      << stage.status().message();
  EXPECT_NE(stage.status().message().find(missing), std::string::npos);

  const std::string garbage =
      (std::filesystem::temp_directory_path() / "faces_stage_test_not_a_cascade.xml")
          .string();
  std::ofstream(garbage)
      << "<?xml version=\"1.0\"?>\n<opencv_storage></opencv_storage>\n";
  stage = BuildFacesStage({{"detector", "haar"}, {"cascade", garbage}});
  std::filesystem::remove(garbage);
  ASSERT_FALSE(stage.ok());
  EXPECT_NE(stage.status().message().find("stages[1].cascade"), std::string::npos)
      << stage.status().message();
  EXPECT_NE(stage.status().message().find(garbage), std::string::npos);

  // The hog detector never reads the cascade.
  EXPECT_TRUE(BuildFacesStage({{"cascade", missing}}).ok());
}

TEST(FacesStageTest, FindsFacesInsideThePhoto) {
  const cv::Mat photo = LoadDlibPhoto(kLargeFacesPhoto);
  ASSERT_FALSE(photo.empty());
  const Record record = RunFaces({}, RecordWithImage(photo));
  ASSERT_FALSE(record.failed()) << record.error();
  // testing.xml annotates three faces; the default settings find them.
  EXPECT_EQ(FaceCount(record), 3);
  const std::vector<cv::Rect> boxes = Boxes(record);
  ASSERT_EQ(boxes.size(), 3u);
  const cv::Rect image(0, 0, photo.cols, photo.rows);
  for (const cv::Rect& box : boxes) {
    EXPECT_EQ(box & image, box) << box;
    EXPECT_GE(box.width, 60);
  }
  const std::vector<double> scores = Scores(record);
  ASSERT_EQ(scores.size(), 3u);
  EXPECT_GE(scores[0], scores[1]);
  EXPECT_GE(scores[1], scores[2]);
  EXPECT_GE(scores[2], 0.0);  // dlib's threshold, min_score 0
  for (const auto& [name, value] : record.fields()) {
    if (name != kImageField) {
      EXPECT_TRUE(IsResultValue(value)) << name;
    }
  }
}

TEST(FacesStageTest, UpsampleFindsSmallerFaces) {
  const cv::Mat photo = LoadDlibPhoto(kSmallFacesPhoto);
  ASSERT_FALSE(photo.empty());
  const std::int64_t plain = FaceCount(RunFaces({}, RecordWithImage(photo)));
  const std::int64_t upsampled =
      FaceCount(RunFaces({{"upsample", "1"}}, RecordWithImage(photo)));
  EXPECT_GE(upsampled, 4);  // six annotated faces of 37-53 pixels
  EXPECT_LT(plain, upsampled);
}

TEST(FacesStageTest, BoxesOfAReducedDecodeAreInOriginalCoordinates) {
  // The "original" is the photo enlarged twice (1000x750); the record holds the
  // photo itself, as decode does when it decodes a JPEG at 1/2 scale.
  const cv::Mat photo = LoadDlibPhoto(kLargeFacesPhoto);
  ASSERT_FALSE(photo.empty());
  cv::Mat original;
  cv::resize(photo, original, cv::Size(photo.cols * 2, photo.rows * 2), 0, 0,
             cv::INTER_LINEAR);
  const std::vector<cv::Rect> full = Boxes(RunFaces({}, RecordWithImage(original)));
  const std::vector<cv::Rect> reduced =
      Boxes(RunFaces({}, RecordWithImage(photo, original.cols, original.rows)));
  ASSERT_EQ(full.size(), 3u);
  ASSERT_EQ(reduced.size(), full.size());
  for (const cv::Rect& box : reduced) {
    double best = 0;
    for (const cv::Rect& other : full) best = std::max(best, IoU(box, other));
    EXPECT_GT(best, 0.5) << box;
    EXPECT_GE(box.width, 120) << box;  // original pixels, not the photo's
  }
}

TEST(FacesStageTest, MinFaceSizeCountsOriginalPixels) {
  const cv::Mat photo = LoadDlibPhoto(kLargeFacesPhoto);
  ASSERT_FALSE(photo.empty());
  // Faces are 90-109 pixels in the photo, so 180-218 in a 2x original.
  EXPECT_EQ(FaceCount(RunFaces({{"min_face_size", "150"}},
                               RecordWithImage(photo, photo.cols * 2, photo.rows * 2))),
            3);
  EXPECT_EQ(FaceCount(RunFaces({{"min_face_size", "150"}}, RecordWithImage(photo))), 0);
}

TEST(FacesStageTest, GrayscaleImagesAreSearchedToo) {
  // decode's keep_grayscale hands over one channel: the same faces, and the payload
  // is left as it was (haar equalizes its copy in place).
  const cv::Mat photo = LoadDlibPhoto(kLargeFacesPhoto);
  ASSERT_FALSE(photo.empty());
  cv::Mat gray;
  cv::cvtColor(photo, gray, cv::COLOR_BGR2GRAY);
  const cv::Mat untouched = gray.clone();
  for (const std::string detector : {"hog", "haar"}) {
    const Record color = RunFaces({{"detector", detector}}, RecordWithImage(photo));
    const Record single = RunFaces({{"detector", detector}}, RecordWithImage(gray));
    ASSERT_FALSE(single.failed()) << detector << ": " << single.error();
    EXPECT_EQ(FaceCount(single), FaceCount(color)) << detector;
    EXPECT_GE(FaceCount(single), 2) << detector;
  }
  EXPECT_EQ(cv::norm(gray, untouched, cv::NORM_INF), 0);
}

TEST(FacesStageTest, PlainImageHasNoFaces) {
  for (const std::string detector : {"hog", "haar"}) {
    const Record record =
        RunFaces({{"detector", detector}},
                 RecordWithImage(cv::Mat(300, 400, CV_8UC3, cv::Scalar(128, 128, 128))));
    ASSERT_FALSE(record.failed()) << record.error();
    EXPECT_EQ(FaceCount(record), 0) << detector;
    EXPECT_EQ(std::get<JsonText>(*record.Find("face_boxes")).text, "[]");
    EXPECT_EQ(std::get<JsonText>(*record.Find("face_scores")).text, "[]");
  }
}

TEST(FacesStageTest, HaarFindsFacesAndScoresByNeighbours) {
  const cv::Mat photo = LoadDlibPhoto(kLargeFacesPhoto);
  ASSERT_FALSE(photo.empty());
  const Record record = RunFaces({{"detector", "haar"}}, RecordWithImage(photo));
  ASSERT_FALSE(record.failed()) << record.error();
  EXPECT_GE(FaceCount(record), 2);
  for (const double score : Scores(record)) {
    EXPECT_EQ(score, static_cast<int>(score));
    EXPECT_GE(score, 3);  // min_neighbors
  }
  // Counts, written as the integers they are.
  const std::string& scores = std::get<JsonText>(*record.Find("face_scores")).text;
  EXPECT_EQ(scores.find('.'), std::string::npos) << scores;
  EXPECT_EQ(FaceCount(RunFaces({{"detector", "haar"}, {"min_face_size", "200"}},
                               RecordWithImage(photo))),
            0);
}

TEST(FacesStageTest, NoImageFailsAsResizeDoes) {
  auto stage = BuildFacesStage({});
  ASSERT_TRUE(stage.ok());
  Record record(1, "u");
  (*stage)->ProcessOne(record);
  EXPECT_EQ(record.reason(), FailureReason::kStage);
  EXPECT_NE(record.error().find("image"), std::string::npos);
}

TEST(FacesStageTest, HogBuildsAgree) {
  if (!HogBuildSupported(HogBuild::kAvx2)) {
    GTEST_SKIP() << "no AVX2 on this CPU, or built with SLUICE_HOG_AVX2=OFF";
  }
  EXPECT_EQ(BestHogBuild(), HogBuild::kAvx2);
  cv::Mat gray;
  cv::cvtColor(LoadDlibPhoto(kLargeFacesPhoto), gray, cv::COLOR_BGR2GRAY);
  const auto baseline = DetectFacesHog(gray, 0, 0, HogBuild::kBaseline);
  const auto avx2 = DetectFacesHog(gray, 0, 0, HogBuild::kAvx2);
  ASSERT_EQ(baseline.size(), avx2.size());
  ASSERT_FALSE(baseline.empty());
  // FMA rounds differently, which may move a box edge by a pixel.
  for (std::size_t i = 0; i < baseline.size(); ++i) {
    EXPECT_GT(IoU(baseline[i].box, avx2[i].box), 0.9)
        << baseline[i].box << " " << avx2[i].box;
    EXPECT_NEAR(baseline[i].score, avx2[i].score, 1e-3);
  }
}

TEST(FacesStageTest, BlazeFaceWritesBoxesScoresAndLandmarksInOriginalPixels) {
  const cv::Mat photo = LoadDlibPhoto(kLargeFacesPhoto);
  ASSERT_FALSE(photo.empty());
  const Record record = RunFaces({{"detector", "blazeface"}}, RecordWithImage(photo));
  ASSERT_FALSE(record.failed()) << record.error();
  EXPECT_EQ(FaceCount(record), 3);
  const std::vector<cv::Rect> boxes = Boxes(record);
  ASSERT_EQ(boxes.size(), 3u);
  const std::vector<double> scores = Scores(record);
  ASSERT_EQ(scores.size(), 3u);
  for (const double score : scores) {
    EXPECT_GE(score, 0.5);
    EXPECT_LE(score, 1.0);
  }
  const Value* landmarks_value = record.Find("face_landmarks");
  ASSERT_NE(landmarks_value, nullptr);
  const auto landmarks = nlohmann::json::parse(std::get<JsonText>(*landmarks_value).text);
  ASSERT_EQ(landmarks.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(landmarks[i].size(), 12u);
    // The eyes and the mouth fall inside the face's box.
    for (const int k : {0, 1, 3}) {
      const cv::Point point(landmarks[i][2 * k].get<int>(), landmarks[i][2 * k + 1].get<int>());
      EXPECT_TRUE(cv::Rect(boxes[i].x, boxes[i].y, boxes[i].width + 1, boxes[i].height + 1)
                      .contains(point))
          << boxes[i] << " " << point;
    }
  }

  // Held at half size with the original size recorded (a reduced JPEG decode): the
  // same faces, in the original's pixels.
  cv::Mat half;
  cv::resize(photo, half, cv::Size(photo.cols / 2, photo.rows / 2), 0, 0, cv::INTER_AREA);
  const Record reduced =
      RunFaces({{"detector", "blazeface"}}, RecordWithImage(half, photo.cols, photo.rows));
  const std::vector<cv::Rect> reduced_boxes = Boxes(reduced);
  ASSERT_EQ(reduced_boxes.size(), 3u);
  for (const cv::Rect& box : reduced_boxes) {
    double best = 0;
    for (const cv::Rect& other : boxes) best = std::max(best, IoU(box, other));
    EXPECT_GT(best, 0.8) << box;
  }

  // hog and haar write no landmarks.
  EXPECT_EQ(RunFaces({}, RecordWithImage(photo)).Find("face_landmarks"), nullptr);
}

TEST(FacesStageTest, BlazeFaceOptionsAndModelErrorsNameTheirKeys) {
  auto missing = BuildFacesStage({{"detector", "blazeface"}, {"model", "/nonexistent.onnx"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("stages[1].model"), std::string::npos)
      << missing.status().message();
  EXPECT_NE(missing.status().message().find("scripts/install-deps.sh"), std::string::npos);
  // Only blazeface reads the model.
  EXPECT_TRUE(BuildFacesStage({{"model", "/nonexistent.onnx"}}).ok());
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"score_threshold", "1.5"}, {"score_threshold", "-0.1"}, {"nms_iou", "2"}}) {
    auto stage = BuildFacesStage({{"detector", "blazeface"}, {key, value}});
    ASSERT_FALSE(stage.ok()) << key << "=" << value;
    EXPECT_NE(stage.status().message().find(key), std::string::npos)
        << stage.status().message();
  }
  // A higher threshold keeps fewer faces, never more.
  const cv::Mat photo = LoadDlibPhoto(kSmallFacesPhoto);
  ASSERT_FALSE(photo.empty());
  EXPECT_LE(FaceCount(RunFaces({{"detector", "blazeface"}, {"score_threshold", "0.9"}},
                               RecordWithImage(photo))),
            FaceCount(RunFaces({{"detector", "blazeface"}}, RecordWithImage(photo))));
}

TEST(FacesStageTest, ConcurrentChunksGiveTheSerialResults) {
  for (const std::string detector : {"hog", "haar", "blazeface"}) {
    auto stage = BuildFacesStage({{"detector", detector}});
    ASSERT_TRUE(stage.ok()) << stage.status().ToString();
    std::vector<Record> inputs;
    for (const char* file : {kLargeFacesPhoto, kSmallFacesPhoto, "2008_004176.jpg"}) {
      inputs.push_back(RecordWithImage(LoadDlibPhoto(file)));
    }
    std::vector<Record> serial = inputs;
    (*stage)->Process(serial);

    constexpr int kThreads = 4;
    std::vector<std::vector<Record>> chunks(kThreads, inputs);
    std::vector<std::thread> threads;
    for (auto& chunk : chunks) {
      threads.emplace_back([&stage, &chunk] { (*stage)->Process(chunk); });
    }
    for (std::thread& thread : threads) thread.join();

    for (const auto& chunk : chunks) {
      for (std::size_t i = 0; i < inputs.size(); ++i) {
        for (const char* field : {"faces", "face_boxes", "face_scores", "face_landmarks"}) {
          if (detector != "blazeface" && std::string(field) == "face_landmarks") continue;
          ASSERT_NE(chunk[i].Find(field), nullptr) << detector << " " << field;
          EXPECT_EQ(*chunk[i].Find(field), *serial[i].Find(field))
              << detector << " " << field;
        }
      }
    }
  }
}

}  // namespace
}  // namespace sluice
