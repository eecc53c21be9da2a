#include "src/stages/image.h"

#include <fmt/format.h>

#include <cstring>

namespace sluice {
namespace {

// The layout: i32 cols, i32 rows, i32 channels (1 or 3), i64 original width, i64
// original height, u8 source_pixels, then rows x cols x channels bytes, row by row.
constexpr std::size_t kHeaderBytes = 4 + 4 + 4 + 8 + 8 + 1;

template <typename T>
void Put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
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
  for (int row = 0; row < pixels_.rows; ++row) {
    out.append(reinterpret_cast<const char*>(pixels_.ptr(row)), row_bytes);
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
  if (pixel_bytes > 0) std::memcpy(pixels.data, bytes.data() + at, pixel_bytes);
  return std::shared_ptr<const Payload>(std::make_shared<ImagePayload>(
      std::move(pixels), original_width, original_height, source_pixels));
}

}  // namespace sluice
