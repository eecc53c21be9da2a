#include "src/stages/faces_stage.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <utility>
#include <vector>

#include "src/stages/blazeface_detector.h"
#include "src/stages/haar_detector.h"
#include "src/stages/hog_detector.h"
#include "src/stages/image.h"

namespace sluice {
namespace {

int Round(double value) { return static_cast<int>(std::lround(value)); }

// "[[x,y,w,h],...]" and "[s,...]" for the result fields.
std::string BoxesJson(const std::vector<FaceDetection>& faces) {
  std::string json = "[";
  for (const FaceDetection& face : faces) {
    if (json.size() > 1) json += ',';
    json += fmt::format("[{},{},{},{}]", face.box.x, face.box.y, face.box.width,
                        face.box.height);
  }
  return json + "]";
}

std::string ScoresJson(const std::vector<FaceDetection>& faces) {
  std::string json = "[";
  for (const FaceDetection& face : faces) {
    if (json.size() > 1) json += ',';
    // Three decimals are all a score says; "{}" writes the shortest form of the
    // rounded number (12, not 12.000, for a Haar detection's neighbour count).
    json += fmt::format("{}", std::round(face.score * 1000.0) / 1000.0);
  }
  return json + "]";
}

std::string LandmarksJson(const std::vector<FaceDetection>& faces) {
  std::string json = "[";
  for (const FaceDetection& face : faces) {
    if (json.size() > 1) json += ',';
    json += '[';
    for (std::size_t i = 0; i < face.landmarks.size(); ++i) {
      json += fmt::format("{}{},{}", i ? "," : "", face.landmarks[i].x, face.landmarks[i].y);
    }
    json += ']';
  }
  return json + "]";
}

}  // namespace

Result<std::unique_ptr<FacesStage>> FacesStage::Create(FacesOptions options) {
  std::unique_ptr<HaarFaceDetector> haar;
  std::unique_ptr<BlazeFaceDetector> blazeface;
  if (options.detector == FaceDetectorKind::kHaar) {
    auto loaded = HaarFaceDetector::Load(options.cascade);
    if (!loaded.ok()) return loaded.status();
    haar = std::move(*loaded);
  } else if (options.detector == FaceDetectorKind::kBlazeFace) {
    if (options.model.empty()) options.model = DefaultBlazeFaceModelPath();
    auto loaded = BlazeFaceDetector::Load(options.model);
    if (!loaded.ok()) return loaded.status();
    blazeface = std::move(*loaded);
  }
  return std::unique_ptr<FacesStage>(
      new FacesStage(std::move(options), std::move(haar), std::move(blazeface)));
}

FacesStage::FacesStage(FacesOptions options, std::unique_ptr<HaarFaceDetector> haar,
                       std::unique_ptr<BlazeFaceDetector> blazeface)
    : options_(std::move(options)), haar_(std::move(haar)), blazeface_(std::move(blazeface)) {
  KeepOpenCvOnCallerThreads();
}

namespace {

// A face in the coordinates of the pixels searched, before the mapping back.
struct Candidate {
  cv::Rect2d box;
  double score = 0;
  std::vector<cv::Point2d> landmarks;
};

std::vector<Candidate> FromDetections(const std::vector<FaceDetection>& found) {
  std::vector<Candidate> candidates;
  candidates.reserve(found.size());
  for (const FaceDetection& face : found) candidates.push_back({face.box, face.score, {}});
  return candidates;
}

}  // namespace

std::vector<FaceDetection> FacesStage::Detect(const ImagePayload& image) const {
  const cv::Mat& pixels = image.pixels();
  if (pixels.empty()) return {};
  const std::int64_t original_width =
      image.original_width() > 0 ? image.original_width() : pixels.cols;
  const std::int64_t original_height =
      image.original_height() > 0 ? image.original_height() : pixels.rows;

  // The pixels searched, and the faces found in their coordinates.
  cv::Size searched = pixels.size();
  std::vector<Candidate> found;
  if (options_.detector == FaceDetectorKind::kBlazeFace) {
    for (const BlazeFaceDetection& face :
         blazeface_->Detect(pixels, static_cast<float>(options_.score_threshold),
                            static_cast<float>(options_.nms_iou))) {
      Candidate candidate{face.box, face.score, {}};
      for (const cv::Point2f& point : face.keypoints) candidate.landmarks.push_back(point);
      found.push_back(std::move(candidate));
    }
  } else {
    // A copy shrunk so that its longer side is detect_size, never enlarged
    // (enlarging is upsample's job, and only hog's).
    cv::Mat search = pixels;
    const int longer = std::max(pixels.cols, pixels.rows);
    if (options_.detect_size > 0 && longer > options_.detect_size) {
      const double scale = static_cast<double>(options_.detect_size) / longer;
      cv::resize(pixels, search,
                 cv::Size(std::max(1, Round(pixels.cols * scale)),
                          std::max(1, Round(pixels.rows * scale))),
                 0, 0, cv::INTER_AREA);
    }
    cv::Mat gray;
    if (search.type() == CV_8UC1) {  // decoded with keep_grayscale
      gray = search.data == pixels.data ? search.clone() : search;  // equalized in place
    } else {
      cv::cvtColor(search, gray, cv::COLOR_BGR2GRAY);
    }
    searched = gray.size();
    if (options_.detector == FaceDetectorKind::kHog) {
      found = FromDetections(DetectFacesHog(gray, options_.upsample, options_.min_score));
    } else {
      cv::equalizeHist(gray, gray);
      // min_face_size in the searched copy's pixels; OpenCV ignores sizes under the
      // cascade's own window (24x24 for the frontal face cascades).
      const double to_original =
          std::max(static_cast<double>(original_width) / gray.cols,
                   static_cast<double>(original_height) / gray.rows);
      const int min_size = static_cast<int>(std::floor(options_.min_face_size / to_original));
      found = FromDetections(haar_->Detect(gray, min_size, options_.min_neighbors));
    }
  }

  // From the searched pixels to the original image, per axis (rounding made the two
  // scales differ slightly).
  const double to_original_x = static_cast<double>(original_width) / searched.width;
  const double to_original_y = static_cast<double>(original_height) / searched.height;
  const auto clip_x = [&](double x) {
    return std::clamp<int>(Round(x * to_original_x), 0, static_cast<int>(original_width));
  };
  const auto clip_y = [&](double y) {
    return std::clamp<int>(Round(y * to_original_y), 0, static_cast<int>(original_height));
  };

  std::vector<FaceDetection> faces;
  faces.reserve(found.size());
  for (const Candidate& face : found) {
    // The face's size counts, not the part of it inside the image.
    if (std::min(face.box.width * to_original_x, face.box.height * to_original_y) <
        options_.min_face_size) {
      continue;
    }
    const int x0 = clip_x(face.box.x);
    const int y0 = clip_y(face.box.y);
    const int x1 = clip_x(face.box.x + face.box.width);
    const int y1 = clip_y(face.box.y + face.box.height);
    if (x1 <= x0 || y1 <= y0) continue;  // entirely outside the image
    FaceDetection kept{cv::Rect(x0, y0, x1 - x0, y1 - y0), face.score, {}};
    for (const cv::Point2d& point : face.landmarks) {
      kept.landmarks.emplace_back(clip_x(point.x), clip_y(point.y));
    }
    faces.push_back(std::move(kept));
  }
  return faces;
}

void FacesStage::ProcessOne(Record& record) {
  const ImagePayload* image = FindImage(record);
  if (image == nullptr) {
    record.Fail(FailureReason::kStage, "faces: no \"image\" payload (run decode first)");
    return;
  }
  std::vector<FaceDetection> faces;
  try {
    faces = Detect(*image);
  } catch (const std::exception& e) {  // cv::Exception, dlib::error, std::bad_alloc
    record.Fail(FailureReason::kStage,
                fmt::format("faces: detection failed on {}x{} pixels: {}", image->width(),
                            image->height(), e.what()));
    return;
  }
  record.Set("faces", static_cast<std::int64_t>(faces.size()));
  record.Set("face_boxes", JsonText{BoxesJson(faces)});
  record.Set("face_scores", JsonText{ScoresJson(faces)});
  if (options_.detector == FaceDetectorKind::kBlazeFace) {
    record.Set("face_landmarks", JsonText{LandmarksJson(faces)});
  }
}

namespace {

Result<std::unique_ptr<Stage>> MakeFaces(StageOptions& options) {
  FacesOptions faces;
  const std::string detector =
      options.GetChoice("detector", "hog", {"hog", "haar", "blazeface"});
  faces.detector = detector == "haar"        ? FaceDetectorKind::kHaar
                   : detector == "blazeface" ? FaceDetectorKind::kBlazeFace
                                             : FaceDetectorKind::kHog;
  faces.detect_size = static_cast<int>(options.GetInt("detect_size", 640, 0, 65536));
  faces.min_face_size = static_cast<int>(options.GetInt("min_face_size", 0, 0, 65536));
  faces.upsample = static_cast<int>(options.GetInt("upsample", 0, 0, 2));
  faces.min_score = options.GetDouble("min_score", 0.0, -1.0, 3.0);
  faces.min_neighbors = static_cast<int>(options.GetInt("min_neighbors", 3, 0, 100));
  faces.cascade = options.GetString("cascade", kDefaultHaarCascade);
  if (faces.cascade.empty()) options.AddError("cascade", "must not be empty");
  faces.score_threshold = options.GetDouble("score_threshold", 0.5, 0.0, 1.0);
  faces.nms_iou = options.GetDouble("nms_iou", 0.3, 0.0, 1.0);
  faces.model = options.GetString("model", "");
  const bool blazeface = faces.detector == FaceDetectorKind::kBlazeFace;

  auto stage = FacesStage::Create(std::move(faces));
  if (!stage.ok()) {
    // Only the cascade or the model can fail here: name the key it came from.
    return InvalidArgument(fmt::format("{}.{}: {}", options.path(),
                                       blazeface ? "model" : "cascade",
                                       stage.status().message()));
  }
  return std::unique_ptr<Stage>(std::move(*stage));
}

}  // namespace

Status RegisterFaceStages(StageRegistry& registry) {
  return registry.Register(
      "faces",
      "detects faces in \"image\" (dlib HOG, OpenCV Haar or BlazeFace): \"faces\", "
      "\"face_boxes\", \"face_scores\" (blazeface: and \"face_landmarks\")",
      MakeFaces);
}

}  // namespace sluice
