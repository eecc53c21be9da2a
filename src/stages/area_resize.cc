#include "src/stages/area_resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <opencv2/imgproc.hpp>
#include <vector>

namespace sluice {
namespace {

// The source pixels each output pixel of one axis covers, with their weights
// (coverage / scale, summing to 1 per output pixel), stored row-compressed:
// output i uses taps [first[i], first[i + 1]).
struct Taps {
  std::vector<int> first;
  std::vector<int> source;
  std::vector<float> weight;
};

Taps MakeTaps(int source_size, int output_size) {
  Taps taps;
  const double scale = static_cast<double>(source_size) / output_size;
  taps.first.reserve(static_cast<std::size_t>(output_size) + 1);
  for (int i = 0; i < output_size; ++i) {
    taps.first.push_back(static_cast<int>(taps.source.size()));
    const double begin = i * scale;
    const double end = std::min<double>(source_size, (i + 1) * scale);
    for (int s = static_cast<int>(begin); s < end && s < source_size; ++s) {
      const double covered = std::min<double>(end, s + 1) - std::max<double>(begin, s);
      if (covered <= 1e-9) continue;
      taps.source.push_back(s);
      taps.weight.push_back(static_cast<float>(covered / scale));
    }
  }
  taps.first.push_back(static_cast<int>(taps.source.size()));
  return taps;
}

// Sums `count` source rows with their weights into `out` (floats, 3 per pixel).
void SumRows(const cv::Mat& src, const Taps& rows, std::size_t y, float* __restrict out) {
  const std::size_t floats = static_cast<std::size_t>(src.cols) * 3;
  std::fill(out, out + floats, 0.0f);
  for (int k = rows.first[y]; k < rows.first[y + 1]; ++k) {
    const std::uint8_t* __restrict in =
        src.ptr<std::uint8_t>(rows.source[static_cast<std::size_t>(k)]);
    const float w = rows.weight[static_cast<std::size_t>(k)];
    for (std::size_t i = 0; i < floats; ++i) out[i] += w * static_cast<float>(in[i]);
  }
}

// One row of column sums filtered horizontally into BGR bytes.
void FilterColumns(const float* __restrict in, const Taps& columns,
                   std::uint8_t* __restrict out) {
  const std::size_t outputs = columns.first.size() - 1;
  for (std::size_t x = 0; x < outputs; ++x) {
    float b = 0.5f;  // rounds to nearest on truncation below
    float g = 0.5f;
    float r = 0.5f;
    for (int k = columns.first[x]; k < columns.first[x + 1]; ++k) {
      const float w = columns.weight[static_cast<std::size_t>(k)];
      const float* pixel = in + 3 * columns.source[static_cast<std::size_t>(k)];
      b += w * pixel[0];
      g += w * pixel[1];
      r += w * pixel[2];
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
    FilterColumns(sums.data(), columns, out.ptr<std::uint8_t>(y));
  }
  return out;
}

}  // namespace sluice
