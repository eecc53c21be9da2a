// The image steps of pipelines/img2dataset.yaml, each against what OpenCV does for
// the same job, in the same run: JPEG decoding at full and reduced scales
// (jpeg_codec.h vs cv::imdecode), PNG decoding (png_codec.h vs cv::imdecode), area
// downscaling (area_resize.h vs cv::resize with INTER_AREA) and JPEG encoding at quality
// 95 (jpeg_codec.h vs cv::imencode).
//
// Input: a 500x375 photo Debian ships with dlib, enlarged to 1000x750 and encoded at
// quality 90, as sluice-make-corpus makes the benchmark corpus. One iteration is one
// image on one thread.
//
// Run: build/rel/codec_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "src/stages/area_resize.h"
#include "src/stages/jpeg_codec.h"
#include "src/stages/png_codec.h"

namespace sluice {
namespace {

constexpr char kPhoto[] = "/usr/share/doc/libdlib19.1/examples/faces/2008_002506.jpg";

struct Inputs {
  std::vector<std::uint8_t> jpeg;  // 1000x750, quality 90
  std::vector<std::uint8_t> png;   // the same photo as PNG (OpenCV's defaults)
  cv::Mat quarter;                 // decoded at 2/8 (250x188): resize input
  cv::Mat half;                    // at 4/8 (500x375)
  cv::Mat small;                   // 256 px on the longer side: encode input
};

const Inputs& GetInputs() {
  static const Inputs inputs = [] {
    Inputs in;
    const cv::Mat original = cv::imread(kPhoto, cv::IMREAD_COLOR);
    if (original.empty()) {
      std::fprintf(stderr, "codec_bench: cannot read %s (package libdlib19.1)\n", kPhoto);
      std::exit(1);
    }
    cv::Mat photo;
    cv::resize(original, photo, cv::Size(1000, 750), 0, 0, cv::INTER_CUBIC);
    cv::imencode(".jpg", photo, in.jpeg, {cv::IMWRITE_JPEG_QUALITY, 90});
    cv::imencode(".png", photo, in.png);
    in.half = DecodeJpeg(in.jpeg, 4).pixels;
    in.quarter = DecodeJpeg(in.jpeg, 2).pixels;
    const double scale = 256.0 / std::max(photo.cols, photo.rows);
    cv::resize(photo, in.small,
               cv::Size(static_cast<int>(photo.cols * scale + 0.5),
                        static_cast<int>(photo.rows * scale + 0.5)),
               0, 0, cv::INTER_AREA);
    return in;
  }();
  return inputs;
}

// Arg: scale in eighths (8, 4, 2, 1), as the decode stage picks it.
void BM_DecodeOurs(benchmark::State& state) {
  const Inputs& in = GetInputs();
  for (auto _ : state) {
    JpegDecodeResult result = DecodeJpeg(in.jpeg, static_cast<int>(state.range(0)));
    benchmark::DoNotOptimize(result.pixels.data);
  }
}
BENCHMARK(BM_DecodeOurs)->Arg(8)->Arg(4)->Arg(2)->Arg(1);

int OpenCvFlag(std::int64_t eighths) {
  switch (eighths) {
    case 4:
      return cv::IMREAD_REDUCED_COLOR_2;
    case 2:
      return cv::IMREAD_REDUCED_COLOR_4;
    case 1:
      return cv::IMREAD_REDUCED_COLOR_8;
    default:
      return cv::IMREAD_COLOR;
  }
}

void BM_DecodeOpenCv(benchmark::State& state) {
  cv::setNumThreads(0);
  const Inputs& in = GetInputs();
  const cv::Mat buffer(1, static_cast<int>(in.jpeg.size()), CV_8UC1,
                       const_cast<std::uint8_t*>(in.jpeg.data()));
  const int flag = OpenCvFlag(state.range(0));
  for (auto _ : state) {
    cv::Mat image = cv::imdecode(buffer, flag);
    benchmark::DoNotOptimize(image.data);
  }
}
BENCHMARK(BM_DecodeOpenCv)->Arg(8)->Arg(4)->Arg(2)->Arg(1);

void BM_DecodePngOurs(benchmark::State& state) {
  const Inputs& in = GetInputs();
  for (auto _ : state) {
    DecodedPixels result = DecodePng(in.png);
    benchmark::DoNotOptimize(result.pixels.data);
  }
}
BENCHMARK(BM_DecodePngOurs);

void BM_DecodePngOpenCv(benchmark::State& state) {
  cv::setNumThreads(0);
  const Inputs& in = GetInputs();
  const cv::Mat buffer(1, static_cast<int>(in.png.size()), CV_8UC1,
                       const_cast<std::uint8_t*>(in.png.data()));
  for (auto _ : state) {
    cv::Mat image = cv::imdecode(buffer, cv::IMREAD_COLOR);
    benchmark::DoNotOptimize(image.data);
  }
}
BENCHMARK(BM_DecodePngOpenCv);

// The odd scales libjpeg-turbo offers but the decode stage never uses (no SIMD).
BENCHMARK(BM_DecodeOurs)->Name("BM_DecodeOurs_unused_scale")->Arg(7)->Arg(6)->Arg(3);

// Arg: 4 downscales the 4/8 decode (500 px) to 256, 2 the 2/8 one (250 px) to 200.
void BM_AreaResizeOurs(benchmark::State& state) {
  const Inputs& in = GetInputs();
  const cv::Mat& src = state.range(0) == 4 ? in.half : in.quarter;
  const int side = state.range(0) == 4 ? 256 : 200;
  const cv::Size to(side, src.rows * side / src.cols);
  for (auto _ : state) {
    cv::Mat out = AreaResize(src, to);
    benchmark::DoNotOptimize(out.data);
  }
}
BENCHMARK(BM_AreaResizeOurs)->Arg(4)->Arg(2);

void BM_AreaResizeOpenCv(benchmark::State& state) {
  cv::setNumThreads(0);
  const Inputs& in = GetInputs();
  const cv::Mat& src = state.range(0) == 4 ? in.half : in.quarter;
  const int side = state.range(0) == 4 ? 256 : 200;
  const cv::Size to(side, src.rows * side / src.cols);
  for (auto _ : state) {
    cv::Mat out;
    cv::resize(src, out, to, 0, 0, cv::INTER_AREA);
    benchmark::DoNotOptimize(out.data);
  }
}
BENCHMARK(BM_AreaResizeOpenCv)->Arg(4)->Arg(2);

void BM_EncodeOurs(benchmark::State& state) {
  const Inputs& in = GetInputs();
  for (auto _ : state) {
    JpegEncodeResult result = EncodeJpeg(in.small, 95);
    benchmark::DoNotOptimize(result.bytes.data());
  }
}
BENCHMARK(BM_EncodeOurs);

void BM_EncodeOpenCv(benchmark::State& state) {
  cv::setNumThreads(0);
  const Inputs& in = GetInputs();
  std::vector<std::uint8_t> out;
  for (auto _ : state) {
    cv::imencode(".jpg", in.small, out, {cv::IMWRITE_JPEG_QUALITY, 95});
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_EncodeOpenCv);

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();
