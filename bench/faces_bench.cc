// CPU time per image of each step of the faces pipeline, each alone, on the same
// ~1000x750 photo: decode (JPEG, quality 90), resize to 640 on the longer side, face
// detection at 640 (HOG in both builds, on gray and on BGR pixels; Haar), JPEG
// encode at quality 90. One iteration is one image, on one thread, with OpenCV kept
// on the calling thread as in the pipeline (KeepOpenCvOnCallerThreads). These are
// the numbers the "CPU-bound ceiling" of a pipeline run is computed from
// (docs/benchmarks.md).
//
// Run: build/faces/faces_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <thread>
#include <vector>

#include "src/stages/faces_stage.h"
#include "src/stages/hog_detector.h"
#include "src/stages/image.h"

namespace sluice {
namespace {

constexpr char kPhoto[] = "/usr/share/doc/libdlib19.1/examples/faces/2008_002506.jpg";

// The test image, in each form the steps take.
struct Inputs {
  std::vector<std::uint8_t> jpeg;  // 1000x750, quality 90
  cv::Mat decoded;                 // 1000x750 BGR
  cv::Mat bgr640;                  // 640x480 BGR
  cv::Mat gray640;                 // 640x480 gray
};

const Inputs& GetInputs() {
  static const Inputs inputs = [] {
    KeepOpenCvOnCallerThreads();
    Inputs in;
    const cv::Mat photo = cv::imread(kPhoto, cv::IMREAD_COLOR);
    if (photo.empty()) {
      std::fprintf(stderr, "cannot read %s (install libdlib19.1)\n", kPhoto);
      std::abort();
    }
    cv::Mat large;
    cv::resize(photo, large, cv::Size(photo.cols * 2, photo.rows * 2), 0, 0,
               cv::INTER_CUBIC);
    cv::imencode(".jpg", large, in.jpeg, {cv::IMWRITE_JPEG_QUALITY, 90});
    in.decoded = cv::imdecode(in.jpeg, cv::IMREAD_COLOR);
    cv::resize(in.decoded, in.bgr640, cv::Size(640, 480), 0, 0, cv::INTER_AREA);
    cv::cvtColor(in.bgr640, in.gray640, cv::COLOR_BGR2GRAY);
    return in;
  }();
  return inputs;
}

void BM_DecodeJpeg(benchmark::State& state) {
  const Inputs& in = GetInputs();
  for (auto _ : state) {
    benchmark::DoNotOptimize(cv::imdecode(in.jpeg, cv::IMREAD_COLOR));
  }
  state.SetLabel(std::to_string(in.decoded.cols) + "x" + std::to_string(in.decoded.rows) +
                 ", " + std::to_string(in.jpeg.size()) + " bytes");
}
BENCHMARK(BM_DecodeJpeg)->Unit(benchmark::kMillisecond);

void BM_ResizeTo640(benchmark::State& state) {
  const Inputs& in = GetInputs();
  cv::Mat out;
  for (auto _ : state) {
    cv::resize(in.decoded, out, cv::Size(640, 480), 0, 0, cv::INTER_AREA);
    benchmark::DoNotOptimize(out.data);
  }
}
BENCHMARK(BM_ResizeTo640)->Unit(benchmark::kMillisecond);

// dlib's HOG detector alone. Args: build (0 baseline, 1 avx2), pixels (0 gray, 1 BGR).
void BM_HogDetect640(benchmark::State& state) {
  const Inputs& in = GetInputs();
  const HogBuild build = state.range(0) == 1 ? HogBuild::kAvx2 : HogBuild::kBaseline;
  if (!HogBuildSupported(build)) {
    state.SkipWithError("build not supported on this CPU");
    return;
  }
  const cv::Mat& image = state.range(1) == 1 ? in.bgr640 : in.gray640;
  // The first call builds the process's model (about a second): not per image.
  std::size_t faces = DetectFacesHog(image, 0, 0, build).size();
  for (auto _ : state) faces = DetectFacesHog(image, 0, 0, build).size();
  state.SetLabel(std::string(HogBuildName(build)) +
                 (state.range(1) == 1 ? " bgr" : " gray") + ", " + std::to_string(faces) +
                 " faces");
}
BENCHMARK(BM_HogDetect640)
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->ArgNames({"avx2", "bgr"})
    ->Unit(benchmark::kMillisecond);

// The whole stage on a 640x480 record, as configured by `options`.
void RunStage(benchmark::State& state, const FacesOptions& options) {
  const Inputs& in = GetInputs();
  auto stage = FacesStage::Create(options);
  if (!stage.ok()) {
    state.SkipWithError(stage.status().ToString().c_str());
    return;
  }
  const ImagePayload image(in.bgr640, in.bgr640.cols, in.bgr640.rows);
  std::size_t faces = (*stage)->Detect(image).size();  // warm-up, as above
  for (auto _ : state) faces = (*stage)->Detect(image).size();
  state.SetLabel(std::to_string(faces) + " faces");
}

void BM_FacesStageHog640(benchmark::State& state) {
  FacesOptions options;
  options.upsample = static_cast<int>(state.range(0));
  RunStage(state, options);
}
BENCHMARK(BM_FacesStageHog640)
    ->ArgName("upsample")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond);

void BM_FacesStageHaar640(benchmark::State& state) {
  FacesOptions options;
  options.detector = FaceDetectorKind::kHaar;
  RunStage(state, options);
}
BENCHMARK(BM_FacesStageHaar640)->Unit(benchmark::kMillisecond);

// BlazeFace: letterbox to 256 x 256, one forward of the network, decoding, mapping.
void BM_FacesStageBlazeFace640(benchmark::State& state) {
  FacesOptions options;
  options.detector = FaceDetectorKind::kBlazeFace;
  RunStage(state, options);
}
BENCHMARK(BM_FacesStageBlazeFace640)->Unit(benchmark::kMillisecond);

void BM_EncodeJpeg90(benchmark::State& state) {
  const Inputs& in = GetInputs();
  std::vector<std::uint8_t> out;
  for (auto _ : state) {
    cv::imencode(".jpg", in.bgr640, out, {cv::IMWRITE_JPEG_QUALITY, 90});
    benchmark::DoNotOptimize(out.data());
  }
  state.SetLabel("640x480");
}
BENCHMARK(BM_EncodeJpeg90)->Unit(benchmark::kMillisecond);

// What a new pool thread pays once: building its dlib detector, plus one detection
// on a small image and the thread's start. Real time: the work is on another thread.
void BM_HogFirstCallOnNewThread(benchmark::State& state) {
  const cv::Mat tiny(100, 100, CV_8UC1, cv::Scalar(128));
  for (auto _ : state) {
    std::thread thread([&tiny] { benchmark::DoNotOptimize(DetectFacesHog(tiny, 0, 0)); });
    thread.join();
  }
}
BENCHMARK(BM_HogFirstCallOnNewThread)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();
