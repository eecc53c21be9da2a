#include "src/stages/area_resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <opencv2/imgproc.hpp>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// Builds a function for AVX2 and for the baseline, chosen at load time (ifunc).
// Not under the sanitizers: the choice runs while the program is being relocated,
// before their runtimes start (ThreadSanitizer's tests crashed at start).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_THREAD__) && \
    !defined(__SANITIZE_ADDRESS__)
#define SLUICE_AVX2_CLONE __attribute__((target_clones("avx2", "default")))
#else
#define SLUICE_AVX2_CLONE
#endif

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
// source pixel). Built for AVX2 too: 10-15% less time for the whole resize.
SLUICE_AVX2_CLONE void SumRows(const cv::Mat& src, const Taps& rows, std::size_t y,
                               float* __restrict out) {
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

// Floats of slack after a row of sums: the vector filter below loads 4 floats at
// each tap's pixel, one past its 3.
constexpr std::size_t kSumsSlack = 4;

// One row of vertical sums filtered horizontally into BGR bytes. kWidth: the taps
// per output known at compile time (0: columns.width, at run time). `in` has
// kSumsSlack floats after the row.
template <int kWidth>
void FilterColumns(const float* __restrict in, const Taps& columns,
                   std::uint8_t* __restrict out) {
  const std::size_t width = kWidth > 0 ? kWidth : static_cast<std::size_t>(columns.width);
  const std::size_t outputs = columns.first.size();
  const float* weights = columns.weight.data();
  std::size_t x = 0;
#if defined(__SSE2__)
  // B, G, R (and the next pixel's B, ignored) in one vector: the same sums in the
  // same order as the scalar loop below, so the same bytes. Each pixel is stored as
  // 4 bytes, the 4th overwritten by the next pixel; the last one goes the scalar way.
  const __m128 half = _mm_set1_ps(0.5f);
  for (; x + 1 < outputs; ++x) {
    const float* pixel = in + 3 * static_cast<std::size_t>(columns.first[x]);
    const float* w = weights + x * width;
    __m128 sum = half;
    for (std::size_t k = 0; k < width; ++k) {
      sum = _mm_add_ps(sum, _mm_mul_ps(_mm_set1_ps(w[k]), _mm_loadu_ps(pixel + 3 * k)));
    }
    const __m128i words = _mm_cvttps_epi32(sum);  // >= 0: truncation rounds (+0.5)
    const __m128i bytes = _mm_packus_epi16(_mm_packs_epi32(words, words), words);
    const auto four = static_cast<std::uint32_t>(_mm_cvtsi128_si32(bytes));
    std::memcpy(out + 3 * x, &four, sizeof four);
  }
#endif
  for (; x < outputs; ++x) {
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

// Whether the filter above handles it (else cv::resize does).
bool Handled(const cv::Mat& src, cv::Size size) {
  return src.type() == CV_8UC3 && size.width > 0 && size.height > 0 &&
         size.width <= src.cols && size.height <= src.rows;
}

}  // namespace

void AreaResizeInto(const cv::Mat& src, cv::Mat& dst) {
  const cv::Size size = dst.size();
  if (!Handled(src, size)) {
    cv::Mat resized;
    cv::resize(src, resized, size, 0, 0, cv::INTER_AREA);
    resized.copyTo(dst);  // into dst's own pixels: the types agree
    return;
  }
  const Taps columns = MakeTaps(src.cols, size.width);
  const Taps rows = MakeTaps(src.rows, size.height);
  // Rows first: the vertical sums run over whole contiguous rows (vectorised), and
  // the per-pixel horizontal taps then run on size.height rows only.
  std::vector<float> sums(static_cast<std::size_t>(src.cols) * 3 + kSumsSlack);
  for (int y = 0; y < size.height; ++y) {
    SumRows(src, rows, static_cast<std::size_t>(y), sums.data());
    std::uint8_t* row = dst.ptr<std::uint8_t>(y);
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
}

cv::Mat AreaResize(const cv::Mat& src, cv::Size size) {
  cv::Mat out;
  if (!Handled(src, size)) {
    cv::resize(src, out, size, 0, 0, cv::INTER_AREA);
    return out;
  }
  out.create(size, CV_8UC3);
  AreaResizeInto(src, out);
  return out;
}

}  // namespace sluice
