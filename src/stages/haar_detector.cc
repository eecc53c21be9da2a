#include "src/stages/haar_detector.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <utility>

namespace sluice {

Result<std::unique_ptr<HaarFaceDetector>> HaarFaceDetector::Load(
    const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return InvalidArgument(fmt::format("cannot open cascade file {}", path));
  std::string xml((std::istreambuf_iterator<char>(file)),
                  std::istreambuf_iterator<char>());
  if (file.bad()) {
    return InvalidArgument(fmt::format("cannot read cascade file {}", path));
  }
  std::unique_ptr<HaarFaceDetector> detector(new HaarFaceDetector(std::move(xml)));
  std::unique_ptr<cv::CascadeClassifier> first = detector->Parse();
  if (first == nullptr) {
    return InvalidArgument(
        fmt::format("{} is not a cascade OpenCV can load (cv::CascadeClassifier)", path));
  }
  detector->pool_.Add(std::move(first));
  return detector;
}

std::unique_ptr<cv::CascadeClassifier> HaarFaceDetector::Parse() const {
  auto classifier = std::make_unique<cv::CascadeClassifier>();
  try {
    const cv::FileStorage storage(xml_, cv::FileStorage::READ | cv::FileStorage::MEMORY);
    if (!storage.isOpened() || !classifier->read(storage.getFirstTopLevelNode()) ||
        classifier->empty()) {
      return nullptr;
    }
  } catch (const cv::Exception&) {
    return nullptr;  // not XML/YAML/JSON OpenCV can parse
  }
  return classifier;
}

std::vector<FaceDetection> HaarFaceDetector::Detect(const cv::Mat& gray, int min_size,
                                                    int min_neighbors) const {
  auto classifier = pool_.Borrow();
  std::vector<cv::Rect> boxes;
  std::vector<int> neighbors;
  classifier->detectMultiScale(gray, boxes, neighbors, /*scaleFactor=*/1.1, min_neighbors,
                               /*flags=*/0, cv::Size(min_size, min_size));

  std::vector<FaceDetection> faces;
  faces.reserve(boxes.size());
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    faces.push_back(
        FaceDetection{boxes[i], i < neighbors.size() ? neighbors[i] : 1.0, {}});
  }
  std::stable_sort(
      faces.begin(), faces.end(),
      [](const FaceDetection& a, const FaceDetection& b) { return a.score > b.score; });
  return faces;
}

}  // namespace sluice
