#include "src/stages/jpeg_codec.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>

namespace sluice {
namespace {

// libjpeg's error manager with the jump back into our code. libjpeg only sees `pub`.
struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  bool has_message = false;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void OnError(j_common_ptr info) {
  auto* errors = reinterpret_cast<ErrorManager*>(info->err);
  if (!errors->has_message) {
    (*info->err->format_message)(info, errors->message);
    errors->has_message = true;
  }
  std::longjmp(errors->jump, 1);
}

// Warnings (corrupt data, premature end of file) and traces are not errors.
void OnMessage(j_common_ptr info, int level) {
  (void)info;
  (void)level;
}

void OnProgress(j_common_ptr info) {
  auto* decompress = reinterpret_cast<j_decompress_ptr>(info);
  if (decompress->input_scan_number <= kMaxScans) return;
  auto* errors = reinterpret_cast<ErrorManager*>(info->err);
  std::snprintf(errors->message, sizeof errors->message,
                "more than %d progressive scans", kMaxScans);
  errors->has_message = true;
  OnError(info);
}

// The two phases below hold only plain data between their setjmp and any longjmp
// back to it, so no destructor is skipped. Each returns false on a libjpeg error.

// Reads the header and starts decompression at scale/8 into BGR.
bool StartDecode(jpeg_decompress_struct* info, ErrorManager* errors,
                 jpeg_progress_mgr* progress, const std::uint8_t* data,
                 unsigned long size, int scale, bool keep_grayscale,
                 bool* unsupported_color) {
  if (setjmp(errors->jump) != 0) return false;
  jpeg_create_decompress(info);
  jpeg_mem_src(info, data, size);
  jpeg_read_header(info, TRUE);
  if (info->jpeg_color_space == JCS_CMYK || info->jpeg_color_space == JCS_YCCK) {
    *unsupported_color = true;
    return false;
  }
  info->out_color_space = keep_grayscale && info->jpeg_color_space == JCS_GRAYSCALE
                              ? JCS_GRAYSCALE
                              : JCS_EXT_BGR;
  info->scale_num = static_cast<unsigned int>(scale);
  info->scale_denom = 8;
  info->progress = progress;
  jpeg_start_decompress(info);
  return true;
}

// Decodes every row into `base` (output_height rows of `stride` bytes).
bool ReadRows(jpeg_decompress_struct* info, ErrorManager* errors, std::uint8_t* base,
              std::size_t stride) {
  if (setjmp(errors->jump) != 0) return false;
  constexpr JDIMENSION kRowsPerCall = 16;
  while (info->output_scanline < info->output_height) {
    JSAMPROW rows[kRowsPerCall];
    const JDIMENSION first = info->output_scanline;
    const JDIMENSION count = std::min(kRowsPerCall, info->output_height - first);
    for (JDIMENSION i = 0; i < count; ++i) rows[i] = base + (first + i) * stride;
    // A memory source never suspends: each call makes progress (past the end of
    // the data libjpeg inserts an EOI and pads the missing rows).
    jpeg_read_scanlines(info, rows, count);
  }
  return true;
}

// Compresses every row of `pixels` into libjpeg's memory destination.
bool RunEncode(jpeg_compress_struct* info, ErrorManager* errors, const cv::Mat* pixels,
               int quality, unsigned char** out, unsigned long* size) {
  if (setjmp(errors->jump) != 0) return false;
  jpeg_create_compress(info);
  jpeg_mem_dest(info, out, size);
  info->image_width = static_cast<JDIMENSION>(pixels->cols);
  info->image_height = static_cast<JDIMENSION>(pixels->rows);
  info->input_components = 3;
  info->in_color_space = JCS_EXT_BGR;
  jpeg_set_defaults(info);
  jpeg_set_quality(info, quality, TRUE);
  jpeg_start_compress(info, TRUE);
  while (info->next_scanline < info->image_height) {
    // libjpeg does not write through the row pointer.
    JSAMPROW row = const_cast<JSAMPROW>(pixels->ptr<std::uint8_t>(
        static_cast<int>(info->next_scanline)));
    jpeg_write_scanlines(info, &row, 1);
  }
  jpeg_finish_compress(info);
  return true;
}

}  // namespace

JpegEncodeResult EncodeJpeg(const cv::Mat& pixels, int quality) {
  JpegEncodeResult result;
  if (pixels.type() != CV_8UC3 || pixels.empty()) {
    result.error = "not an 8-bit BGR image";
    return result;
  }
  jpeg_compress_struct info{};
  ErrorManager errors{};
  info.err = jpeg_std_error(&errors.pub);
  errors.pub.error_exit = OnError;
  errors.pub.emit_message = OnMessage;
  unsigned char* out = nullptr;  // malloc'ed by libjpeg's memory destination
  unsigned long size = 0;
  struct Cleanup {
    jpeg_compress_struct* info;
    unsigned char** out;
    ~Cleanup() {
      jpeg_destroy_compress(info);
      std::free(*out);
    }
  } cleanup{&info, &out};
  if (!RunEncode(&info, &errors, &pixels, std::clamp(quality, 1, 100), &out, &size)) {
    result.error = std::string("libjpeg: ") + errors.message;
    return result;
  }
  result.bytes.assign(out, out + size);
  return result;
}

int JpegScaleEighths(std::int64_t side, std::int64_t target) {
  if (target <= 0 || side <= target) return 8;
  for (int m : {1, 2, 4}) {
    if ((side * m + 7) / 8 >= target) return m;
  }
  return 8;
}

JpegDecodeResult DecodeJpeg(std::span<const std::uint8_t> bytes, int scale_eighths,
                            bool keep_grayscale) {
  JpegDecodeResult result;
  jpeg_decompress_struct info{};
  ErrorManager errors{};
  info.err = jpeg_std_error(&errors.pub);
  errors.pub.error_exit = OnError;
  errors.pub.emit_message = OnMessage;
  jpeg_progress_mgr progress{};
  progress.progress_monitor = OnProgress;
  struct Destroyer {
    jpeg_decompress_struct* info;
    ~Destroyer() { jpeg_destroy_decompress(info); }  // safe on a never-created struct
  } destroyer{&info};

  const int scale = std::clamp(scale_eighths, 1, 8);
  if (!StartDecode(&info, &errors, &progress, bytes.data(),
                   static_cast<unsigned long>(bytes.size()), scale, keep_grayscale,
                   &result.unsupported_color)) {
    result.error = result.unsupported_color ? "CMYK/YCCK colour (not decoded here)"
                                            : std::string("libjpeg: ") + errors.message;
    return result;
  }
  cv::Mat pixels(static_cast<int>(info.output_height), static_cast<int>(info.output_width),
                 info.out_color_space == JCS_GRAYSCALE ? CV_8UC1 : CV_8UC3);
  if (!ReadRows(&info, &errors, pixels.data, pixels.step[0])) {
    result.error = std::string("libjpeg: ") + errors.message;
    return result;
  }
  result.pixels = std::move(pixels);
  return result;
}

}  // namespace sluice
