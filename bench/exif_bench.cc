// What decode's extract_exif costs per image (src/stages/exif.h), against the decode
// of the same image in the same run.
//
// Input: the 1000x750 quality-90 photo of codec_bench (a dlib photo, enlarged), with
// the EXIF block of tests/fixtures/exif/camera.jpg inserted after SOI: a camera's
// IFD0, thumbnail IFD with its 699-byte JPEG thumbnail, Exif and Interoperability
// IFDs, 49 tags printed (3.4 KB). Also the photo without EXIF, as most images on
// the web are. One iteration is one image on one thread.
//
// Run: build/rel/exif_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <string>
#include <vector>

#include "src/stages/exif.h"
#include "src/stages/jpeg_codec.h"

namespace sluice {
namespace {

constexpr char kPhoto[] = "/usr/share/doc/libdlib19.1/examples/faces/2008_002506.jpg";

struct Inputs {
  std::vector<std::uint8_t> plain;      // 1000x750, quality 90, no EXIF
  std::vector<std::uint8_t> with_exif;  // the same with camera.jpg's APP1 after SOI
};

[[noreturn]] void Fail(const std::string& why) {
  std::fprintf(stderr, "exif_bench: %s\n", why.c_str());
  std::exit(1);
}

const Inputs& GetInputs() {
  static const Inputs inputs = [] {
    Inputs in;
    const cv::Mat original = cv::imread(kPhoto, cv::IMREAD_COLOR);
    if (original.empty()) Fail(std::string("cannot read ") + kPhoto + " (libdlib19.1)");
    cv::Mat photo;
    cv::resize(original, photo, cv::Size(1000, 750), 0, 0, cv::INTER_CUBIC);
    cv::imencode(".jpg", photo, in.plain, {cv::IMWRITE_JPEG_QUALITY, 90});

    const std::string camera_path =
        std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/exif/camera.jpg";
    std::ifstream file(camera_path, std::ios::binary);
    const std::vector<std::uint8_t> camera((std::istreambuf_iterator<char>(file)), {});
    // camera.jpg is SOI, then its Exif APP1.
    if (camera.size() < 6 || camera[2] != 0xFF || camera[3] != 0xE1) {
      Fail("no APP1 after SOI in " + camera_path);
    }
    const std::size_t app1_size = 2 + (camera[4] << 8 | camera[5]);
    in.with_exif.assign(in.plain.begin(), in.plain.begin() + 2);
    in.with_exif.insert(in.with_exif.end(), camera.begin() + 2,
                        camera.begin() + 2 + app1_size);
    in.with_exif.insert(in.with_exif.end(), in.plain.begin() + 2, in.plain.end());
    if (ExifJson(in.with_exif).value_or("{}") == "{}") Fail("the EXIF was not found");
    return in;
  }();
  return inputs;
}

void BM_ExifJson(benchmark::State& state) {
  const Inputs& in = GetInputs();
  for (auto _ : state) {
    std::optional<std::string> json = ExifJson(in.with_exif);
    benchmark::DoNotOptimize(json);
  }
}
BENCHMARK(BM_ExifJson);

void BM_ExifJsonNoExif(benchmark::State& state) {
  const Inputs& in = GetInputs();
  for (auto _ : state) {
    std::optional<std::string> json = ExifJson(in.plain);
    benchmark::DoNotOptimize(json);
  }
}
BENCHMARK(BM_ExifJsonNoExif);

// Arg: scale in eighths: 8, full size, as pipelines/img2dataset.yaml decodes this
// photo (border mode at 256 keeps the longer side at least 512 px: 4/8 gives 500);
// 2, the cheapest decode the stage makes of it (keep_ratio at 256).
void BM_DecodeJpeg(benchmark::State& state) {
  const Inputs& in = GetInputs();
  for (auto _ : state) {
    JpegDecodeResult result = DecodeJpeg(in.with_exif, static_cast<int>(state.range(0)));
    benchmark::DoNotOptimize(result.pixels.data);
  }
}
BENCHMARK(BM_DecodeJpeg)->Arg(8)->Arg(2);

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();
