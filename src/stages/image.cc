#include "src/stages/image.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace sluice {
namespace {

// The layout: i32 cols, i32 rows, i32 channels (1 or 3), i64 original width, i64
// original height, u8 source_pixels, then rows x cols x channels bytes, row by row,
// each byte of a row after the first the difference (mod 256) to the byte above it
// (PNG's "up" filter). Photos are smooth: the differences are mostly small numbers,
// which the record codec's zstd packs to ~0.72 of the pixels' size, against ~0.87
// for the pixels themselves (its fast level, 640 px images of the faces corpus);
// and unlike a difference to the left neighbour, both ways are loops without a
// dependency from one byte to the next: eight bytes at a time (BytewiseDelta).
constexpr std::size_t kHeaderBytes = 4 + 4 + 4 + 8 + 8 + 1;

template <typename T>
void Put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

// to[i] = a[i] - b[i] (or + with `add`) mod 256, eight bytes at a time: each
// byte's top bit is worked out apart, so that no carry or borrow crosses into the
// next byte.
void BytewiseDelta(const std::uint8_t* a, const std::uint8_t* b, std::uint8_t* to,
                   std::size_t size, bool add) {
  constexpr std::uint64_t kHigh = 0x8080808080808080ull;
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t x;
    std::uint64_t y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    const std::uint64_t z = add ? ((x & ~kHigh) + (y & ~kHigh)) ^ ((x ^ y) & kHigh)
                                : ((x | kHigh) - (y & ~kHigh)) ^ ((x ^ ~y) & kHigh);
    std::memcpy(to + i, &z, 8);
  }
  for (; i < size; ++i) {
    to[i] = static_cast<std::uint8_t>(add ? a[i] + b[i] : a[i] - b[i]);
  }
}

template <typename T>
T Get(std::string_view bytes, std::size_t& at) {
  T value;
  std::memcpy(&value, bytes.data() + at, sizeof(T));
  at += sizeof(T);
  return value;
}

}  // namespace

void ImagePayload::Encode(std::string& out) const {
  const int channels = pixels_.channels();
  const std::size_t row_bytes = static_cast<std::size_t>(pixels_.cols) * channels;
  out.reserve(out.size() + kHeaderBytes + row_bytes * pixels_.rows);
  Put<std::int32_t>(out, pixels_.cols);
  Put<std::int32_t>(out, pixels_.rows);
  Put<std::int32_t>(out, channels);
  Put<std::int64_t>(out, original_width_);
  Put<std::int64_t>(out, original_height_);
  Put<std::uint8_t>(out, source_pixels_ ? 1 : 0);
  const std::size_t start = out.size();
  out.resize(start + row_bytes * pixels_.rows);
  auto* to = reinterpret_cast<std::uint8_t*>(out.data() + start);
  for (int row = 0; row < pixels_.rows; ++row, to += row_bytes) {
    const std::uint8_t* from = pixels_.ptr<std::uint8_t>(row);
    if (row == 0) {
      std::memcpy(to, from, row_bytes);
      continue;
    }
    BytewiseDelta(from, pixels_.ptr<std::uint8_t>(row - 1), to, row_bytes, false);
  }
}

Result<std::shared_ptr<const Payload>> DecodeImagePayload(std::string_view bytes) {
  if (bytes.size() < kHeaderBytes) return Corruption("image payload: truncated header");
  std::size_t at = 0;
  const auto cols = Get<std::int32_t>(bytes, at);
  const auto rows = Get<std::int32_t>(bytes, at);
  const auto channels = Get<std::int32_t>(bytes, at);
  const auto original_width = Get<std::int64_t>(bytes, at);
  const auto original_height = Get<std::int64_t>(bytes, at);
  const bool source_pixels = Get<std::uint8_t>(bytes, at) != 0;
  if (cols < 0 || rows < 0 || (channels != 1 && channels != 3) || original_width < 0 ||
      original_height < 0) {
    return Corruption(
        fmt::format("image payload: impossible shape {}x{}x{}", cols, rows, channels));
  }
  const std::uint64_t pixel_bytes =
      std::uint64_t(cols) * std::uint64_t(rows) * std::uint64_t(channels);
  if (bytes.size() - at != pixel_bytes) {
    return Corruption(fmt::format("image payload: {} pixel bytes for {}x{}x{}",
                                  bytes.size() - at, cols, rows, channels));
  }
  cv::Mat pixels(rows, cols, channels == 3 ? CV_8UC3 : CV_8UC1);
  const std::size_t row_bytes = static_cast<std::size_t>(cols) * channels;
  const auto* from = reinterpret_cast<const std::uint8_t*>(bytes.data() + at);
  for (int row = 0; row < rows; ++row, from += row_bytes) {
    std::uint8_t* to = pixels.ptr<std::uint8_t>(row);
    if (row == 0) {
      std::memcpy(to, from, row_bytes);
      continue;
    }
    BytewiseDelta(from, pixels.ptr<std::uint8_t>(row - 1), to, row_bytes, true);
  }
  return std::shared_ptr<const Payload>(std::make_shared<ImagePayload>(
      std::move(pixels), original_width, original_height, source_pixels));
}

}  // namespace sluice
