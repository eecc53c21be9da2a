#include "src/stages/area_resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <opencv2/imgproc.hpp>
#include <vector>

namespace sluice {
namespace {

// The source pixels each output pixel of one axis covers, with their weights
// (coverage / scale, summing to 1 per output pixel). Every output has the same
// number of taps, `width`, zero-weighted where it covers fewer: output i uses
// sources first[i] .. first[i] + width - 1 with weight[i * width + k].
struct Taps {
  int width = 1;
  std::vector<int> first;
  std::vector<float> weight;
};

Taps MakeTaps(int source_size, int output_size) {
  const double scale = static_cast<double>(source_size) / output_size;
  Taps taps;
  taps.width = std::min(source_size, static_cast<int>(std::ceil(scale)) + 1);
  const auto width = static_cast<std::size_t>(taps.width);
  taps.first.resize(static_cast<std::size_t>(output_size));
  taps.weight.assign(static_cast<std::size_t>(output_size) * width, 0.0f);
  for (int i = 0; i < output_size; ++i) {
    const double begin = i * scale;
    const double end = std::min<double>(source_size, (i + 1) * scale);
    // Shifted left at the right edge so that every tap lies inside the source.
    const int first = std::min(static_cast<int>(begin), source_size - taps.width);
    taps.first[static_cast<std::size_t>(i)] = first;
    for (int k = 0; k < taps.width; ++k) {
      const int s = first + k;
      const double covered = std::min<double>(end, s + 1) - std::max<double>(begin, s);
      if (covered > 0) {
        taps.weight[static_cast<std::size_t>(i) * width + static_cast<std::size_t>(k)] =
            static_cast<float>(covered / scale);
      }
    }
  }
  return taps;
}

// The weighted sum of the source rows of output row `y` into `out` (3 floats per
// source pixel).
void SumRows(const cv::Mat& src, const Taps& rows, std::size_t y, float* __restrict out) {
  const std::size_t floats = static_cast<std::size_t>(src.cols) * 3;
  std::fill(out, out + floats, 0.0f);
  const auto width = static_cast<std::size_t>(rows.width);
  for (std::size_t k = 0; k < width; ++k) {
    const float w = rows.weight[y * width + k];
    if (w == 0.0f) continue;
    const std::uint8_t* __restrict in =
        src.ptr<std::uint8_t>(rows.first[y] + static_cast<int>(k));
    for (std::size_t i = 0; i < floats; ++i) out[i] += w * static_cast<float>(in[i]);
  }
}

// One row of vertical sums filtered horizontally into BGR bytes. kWidth: the taps
// per output known at compile time (0: columns.width, at run time).
template <int kWidth>
void FilterColumns(const float* __restrict in, const Taps& columns,
                   std::uint8_t* __restrict out) {
  const std::size_t width = kWidth > 0 ? kWidth : static_cast<std::size_t>(columns.width);
  const std::size_t outputs = columns.first.size();
  const float* weights = columns.weight.data();
  for (std::size_t x = 0; x < outputs; ++x) {
    float b = 0.5f;  // rounds to nearest on truncation below
    float g = 0.5f;
    float r = 0.5f;
    const float* pixel = in + 3 * static_cast<std::size_t>(columns.first[x]);
    const float* w = weights + x * width;
    for (std::size_t k = 0; k < width; ++k) {
      b += w[k] * pixel[3 * k];
      g += w[k] * pixel[3 * k + 1];
      r += w[k] * pixel[3 * k + 2];
    }
    out[3 * x] = static_cast<std::uint8_t>(std::min(b, 255.0f));
    out[3 * x + 1] = static_cast<std::uint8_t>(std::min(g, 255.0f));
    out[3 * x + 2] = static_cast<std::uint8_t>(std::min(r, 255.0f));
  }
}

}  // namespace

cv::Mat AreaResize(const cv::Mat& src, cv::Size size) {
  if (src.type() != CV_8UC3 || size.width <= 0 || size.height <= 0 ||
      size.width > src.cols || size.height > src.rows) {
    cv::Mat out;
    cv::resize(src, out, size, 0, 0, cv::INTER_AREA);
    return out;
  }
  const Taps columns = MakeTaps(src.cols, size.width);
  const Taps rows = MakeTaps(src.rows, size.height);
  // Rows first: the vertical sums run over whole contiguous rows (vectorised), and
  // the per-pixel horizontal taps then run on size.height rows only.
  std::vector<float> sums(static_cast<std::size_t>(src.cols) * 3);
  cv::Mat out(size, CV_8UC3);
  for (int y = 0; y < size.height; ++y) {
    SumRows(src, rows, static_cast<std::size_t>(y), sums.data());
    std::uint8_t* row = out.ptr<std::uint8_t>(y);
    switch (columns.width) {  // after a scaled JPEG decode the ratio is under 2
      case 2:
        FilterColumns<2>(sums.data(), columns, row);
        break;
      case 3:
        FilterColumns<3>(sums.data(), columns, row);
        break;
      default:
        FilterColumns<0>(sums.data(), columns, row);
        break;
    }
  }
  return out;
}

}  // namespace sluice
