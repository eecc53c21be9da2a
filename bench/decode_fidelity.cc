// sluice-decode-fidelity: what a reduced JPEG decode costs in pixels, against a full
// decode, for the resize after it.
//
//   sluice-decode-fidelity CORPUS_DIR [SIZE...]     (default sizes: 256)
//
// For every JPEG of CORPUS_DIR, every resize mode and every SIZE, the image is
// decoded at full size and resized (the reference: what img2dataset computes), then
// decoded at the reduced scale a margin M allows (the side the mode scales kept at
// least ceil(M x SIZE) pixels, as decode plans it with kReducedDecodeMargin) and
// resized the same way; the two outputs have the same size (the geometry comes
// from the original size) and are compared pixel by pixel, every channel. Margins
// 1, 1.5 and 2 are measured. For scale, the noise img2dataset itself adds by saving
// its output as JPEG quality 95: the reference encoded at q95 and decoded, against
// the reference.
//
// Prints one row per size, mode and margin: images, how many were reduced, the mean
// absolute difference over all images and over the reduced ones, the worst image's
// mean and the largest single difference, and the thread CPU milliseconds per image
// of decode + resize; and the q95 row (whose time is that of the full decode). docs/benchmarks.md,
// "Reduced JPEG decode fidelity", records a run.
#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "src/stages/image.h"
#include "src/stages/jpeg_codec.h"
#include "src/stages/resize_stage.h"

namespace {

using sluice::ResizeMode;

double ThreadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

struct Difference {
  double mean = 0;  // over every channel of every pixel
  double max = 0;
};

Difference Compare(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat difference;
  cv::absdiff(a, b, difference);
  Difference d;
  const cv::Scalar per_channel = cv::mean(difference);
  d.mean = (per_channel[0] + per_channel[1] + per_channel[2]) / 3.0;
  cv::minMaxLoc(difference.reshape(1), nullptr, &d.max);
  return d;
}

// Sums of one table row.
struct Row {
  int images = 0, reduced = 0;
  double cpu_ms = 0;  // decode + resize
  double sum_mean = 0, sum_mean_reduced = 0, worst_mean = 0, worst_max = 0;

  void Add(const Difference& d, bool was_reduced) {
    ++images;
    sum_mean += d.mean;
    if (was_reduced) {
      ++reduced;
      sum_mean_reduced += d.mean;
    }
    worst_mean = std::max(worst_mean, d.mean);
    worst_max = std::max(worst_max, d.max);
  }
  std::string Format() const {
    return fmt::format("{:6d} {:7d} {:9.3f} {:12.3f} {:10.3f} {:9.0f} {:8.2f}", images,
                       reduced, images > 0 ? sum_mean / images : 0.0,
                       reduced > 0 ? sum_mean_reduced / reduced : 0.0, worst_mean,
                       worst_max, images > 0 ? cpu_ms / images : 0.0);
  }
};

cv::Mat Resized(cv::Mat pixels, int width, int height, sluice::ResizeStage& resize) {
  sluice::Record record(1, "u");
  record.Set(sluice::kImageField,
             std::shared_ptr<const sluice::Payload>(
                 std::make_shared<sluice::ImagePayload>(std::move(pixels), width, height)));
  resize.ProcessOne(record);
  const sluice::ImagePayload* image = sluice::FindImage(record);
  if (record.failed() || image == nullptr) return {};
  return image->pixels();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: sluice-decode-fidelity CORPUS_DIR [SIZE...]\n";
    return 2;
  }
  std::vector<int> sizes;
  for (int i = 2; i < argc; ++i) sizes.push_back(std::stoi(argv[i]));
  if (sizes.empty()) sizes.push_back(256);

  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(argv[1])) {
    const std::string ext = entry.path().extension().string();
    if (ext == ".jpg" || ext == ".jpeg") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::cerr << "sluice-decode-fidelity: no .jpg files in " << argv[1] << "\n";
    return 2;
  }

  const ResizeMode modes[] = {ResizeMode::kKeepRatio, ResizeMode::kKeepRatioLargest,
                              ResizeMode::kCenterCrop, ResizeMode::kBorder};
  const char* mode_names[] = {"keep_ratio", "keep_ratio_largest", "center_crop", "border"};
  const double margins[] = {1.0, 1.5, 2.0};
  fmt::print("{} JPEGs from {}; reduced decodes against the full decode, then resized\n",
             files.size(), argv[1]);
  fmt::print("{:>5} {:<19} {:<14} {:>6} {:>7} {:>9} {:>12} {:>10} {:>9} {:>8}\n", "size",
             "mode", "compared", "images", "reduced", "mean", "mean reduced", "worst mean",
             "worst max", "cpu ms");
  for (const int size : sizes) {
    for (std::size_t m = 0; m < std::size(modes); ++m) {
      sluice::ResizeOptions options;
      options.size = size;
      options.mode = modes[m];
      sluice::ResizeStage resize(options);
      const bool longer = modes[m] == ResizeMode::kBorder ||
                          modes[m] == ResizeMode::kKeepRatioLargest;
      std::vector<Row> rows(std::size(margins));
      Row q95;
      for (const auto& file : files) {
        std::ifstream in(file, std::ios::binary);
        const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                              std::istreambuf_iterator<char>());
        const double full_started = ThreadCpuMs();
        const sluice::JpegDecodeResult full = sluice::DecodeJpeg(bytes, 8);
        if (full.pixels.empty() || full.pixels.type() != CV_8UC3) {
          std::cerr << file.string() << ": skipped: " << full.error << "\n";
          continue;
        }
        const int w = full.pixels.cols, h = full.pixels.rows;
        const cv::Mat reference = Resized(full.pixels, w, h, resize);
        const double full_ms = ThreadCpuMs() - full_started;
        if (reference.empty()) continue;
        for (std::size_t k = 0; k < std::size(margins); ++k) {
          const int eighths = sluice::JpegScaleEighths(
              longer ? std::max(w, h) : std::min(w, h),
              static_cast<std::int64_t>(std::ceil(margins[k] * size)));
          const double started = ThreadCpuMs();
          cv::Mat pixels = full.pixels;
          if (eighths < 8) pixels = sluice::DecodeJpeg(bytes, eighths).pixels;
          const cv::Mat out = Resized(pixels, w, h, resize);
          // A full-size "reduced" decode costs what the reference did.
          rows[k].cpu_ms += eighths < 8 ? ThreadCpuMs() - started : full_ms;
          if (out.size() != reference.size()) {
            std::cerr << file.string() << ": sizes differ: " << out.cols << "x" << out.rows
                      << " against " << reference.cols << "x" << reference.rows << "\n";
            return 1;
          }
          rows[k].Add(Compare(out, reference), eighths < 8);
        }
        std::vector<std::uint8_t> encoded;
        cv::imencode(".jpg", reference, encoded, {cv::IMWRITE_JPEG_QUALITY, 95});
        q95.Add(Compare(cv::imdecode(encoded, cv::IMREAD_COLOR), reference), true);
        q95.cpu_ms += full_ms;  // the full decode's cost, for comparison
      }
      for (std::size_t k = 0; k < std::size(margins); ++k) {
        fmt::print("{:5d} {:<19} {:<14} {}\n", size, mode_names[m],
                   fmt::format("margin {}", margins[k]), rows[k].Format());
      }
      fmt::print("{:5d} {:<19} {:<14} {}\n", size, mode_names[m], "q95 re-encode",
                 q95.Format());
    }
  }
  return 0;
}
