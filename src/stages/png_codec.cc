#include "src/stages/png_codec.h"

#include <fmt/format.h>
#include <png.h>

#include <csetjmp>
#include <cstring>
#include <vector>

namespace sluice {
namespace {

// What the callbacks share with the reader. Plain data: it lives across setjmp.
struct ReadState {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t offset;
  char error[200];
};

void OnError(png_structp png, png_const_charp message) {
  auto* state = static_cast<ReadState*>(png_get_error_ptr(png));
  std::snprintf(state->error, sizeof state->error, "%s", message);
  png_longjmp(png, 1);
}

void OnWarning(png_structp, png_const_charp) {}  // not errors: dropped

void OnRead(png_structp png, png_bytep out, png_size_t length) {
  auto* state = static_cast<ReadState*>(png_get_io_ptr(png));
  if (length > state->size - state->offset) png_error(png, "file cut short");
  std::memcpy(out, state->data + state->offset, length);
  state->offset += length;
}

// Reads the header and sets the transformations; false (and state->error) on failure.
// Only plain data in this frame: a longjmp out of libpng skips no destructor.
bool ReadHeader(png_structp png, png_infop info, bool keep_grayscale, png_uint_32* width,
                png_uint_32* height, int* channels) {
  if (setjmp(png_jmpbuf(png)) != 0) return false;
  png_read_info(png, info);
  const int color_type = png_get_color_type(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) {
    png_set_expand_gray_1_2_4_to_8(png);
  }
  const bool transparent = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
  if (transparent) png_set_tRNS_to_alpha(png);
  if (bit_depth == 16) png_set_scale_16(png);
  // Gray with alpha becomes BGRA all the same: it is composited on white later.
  const bool stays_gray =
      keep_grayscale && color_type == PNG_COLOR_TYPE_GRAY && !transparent;
  if ((color_type & PNG_COLOR_MASK_COLOR) == 0 && !stays_gray) png_set_gray_to_rgb(png);
  png_set_bgr(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  *width = png_get_image_width(png, info);
  *height = png_get_image_height(png, info);
  *channels = png_get_channels(png, info);
  return true;
}

bool ReadRows(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png)) != 0) return false;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return true;
}

}  // namespace

DecodedPixels DecodePng(std::span<const std::uint8_t> bytes, bool keep_grayscale) {
  DecodedPixels result;
  ReadState state{bytes.data(), bytes.size(), 0, {}};
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, &OnError, &OnWarning);
  png_infop info = png != nullptr ? png_create_info_struct(png) : nullptr;
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    result.error = "png: out of memory";
    return result;
  }
  struct Destroyer {
    png_structp* png;
    png_infop* info;
    ~Destroyer() { png_destroy_read_struct(png, info, nullptr); }
  } destroyer{&png, &info};
  png_set_read_fn(png, &state, &OnRead);

  png_uint_32 width = 0, height = 0;
  int channels = 0;
  if (!ReadHeader(png, info, keep_grayscale, &width, &height, &channels)) {
    result.error = fmt::format("png: {}", state.error);
    return result;
  }
  if (channels != 1 && channels != 3 && channels != 4) {
    result.error = fmt::format("png: {} channels after expansion", channels);
    return result;
  }
  cv::Mat pixels(static_cast<int>(height), static_cast<int>(width),
                 CV_MAKETYPE(CV_8U, channels));
  std::vector<png_bytep> rows(height);
  for (png_uint_32 y = 0; y < height; ++y) rows[y] = pixels.ptr(static_cast<int>(y));
  if (!ReadRows(png, rows.data())) {
    result.error = fmt::format("png: {}", state.error);
    return result;
  }
  result.pixels = std::move(pixels);
  return result;
}

}  // namespace sluice
