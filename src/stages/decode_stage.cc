#include "src/stages/decode_stage.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>  // flags only: the functions come from opencv_codecs.h
#include <opencv2/imgproc.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "src/stages/cerr_capture.h"
#include "src/stages/exif.h"
#include "src/stages/gif_codec.h"
#include "src/stages/image.h"
#include "src/stages/image_header.h"
#include "src/stages/jpeg_codec.h"
#include "src/stages/opencv_codecs.h"
#include "src/stages/png_codec.h"
#include "src/stages/resize_stage.h"
#include "src/stages/webp_codec.h"

namespace sluice {
namespace {

// Blends 8-bit BGRA on white: out = c * a + 255 * (1 - a), rounded.
cv::Mat CompositeOnWhite(const cv::Mat& bgra) {
  cv::Mat bgr(bgra.rows, bgra.cols, CV_8UC3);
  for (int y = 0; y < bgra.rows; ++y) {
    const auto* in = bgra.ptr<cv::Vec4b>(y);
    auto* out = bgr.ptr<cv::Vec3b>(y);
    for (int x = 0; x < bgra.cols; ++x) {
      const int alpha = in[x][3];
      for (int c = 0; c < 3; ++c) {
        out[x][c] = static_cast<std::uint8_t>(
            (in[x][c] * alpha + 255 * (255 - alpha) + 127) / 255);
      }
    }
  }
  return bgr;
}

// Brings what a decoder returned to 8-bit BGR, or to 8-bit gray when it is gray and
// `keep_grayscale`. Empty on unsupported layouts.
cv::Mat ToBgr8(cv::Mat image, bool keep_grayscale) {
  if (image.depth() == CV_16U) {
    image.convertTo(image, CV_8U, 1.0 / 257.0);
  } else if (image.depth() == CV_32F || image.depth() == CV_64F) {
    image.convertTo(image, CV_8U, 255.0);
  } else if (image.depth() != CV_8U) {
    image.convertTo(image, CV_8U);
  }
  switch (image.channels()) {
    case 1:
      if (!keep_grayscale) cv::cvtColor(image, image, cv::COLOR_GRAY2BGR);
      return image;
    case 3:
      return image;
    case 4:
      return CompositeOnWhite(image);
    default:
      return {};
  }
}

// Applies an EXIF orientation (2..8) to stored pixels, as OpenCV's IMREAD_COLOR does.
cv::Mat Orient(cv::Mat image, int orientation) {
  cv::Mat out;
  switch (orientation) {
    case 2:  // mirrored
      cv::flip(image, out, 1);
      return out;
    case 3:  // upside down
      cv::flip(image, out, -1);
      return out;
    case 4:  // mirrored upside down
      cv::flip(image, out, 0);
      return out;
    case 5:  // mirrored along the top-left to bottom-right diagonal
      cv::transpose(image, out);
      return out;
    case 6:  // rotated 90 degrees clockwise to be upright
      cv::transpose(image, out);
      cv::flip(out, out, 1);
      return out;
    case 7:
      cv::transpose(image, out);
      cv::flip(out, out, -1);
      return out;
    case 8:  // rotated 90 degrees counter-clockwise to be upright
      cv::transpose(image, out);
      cv::flip(out, out, 0);
      return out;
    default:
      return image;
  }
}

// PNG, GIF or WebP through its own library.
DecodedPixels DecodeWithLibrary(ImageFormat format, std::span<const std::uint8_t> bytes,
                                std::int64_t max_pixels, bool keep_grayscale) {
  if (format == ImageFormat::kPng) return DecodePng(bytes, keep_grayscale);
  if (format == ImageFormat::kGif) return DecodeGif(bytes, max_pixels);
  return DecodeWebp(bytes);  // its `animated` is not needed here
}

// What OpenCV printed while decoding, made one line for an item's error: its own
// error lines ("imdecode_(''): can't read data: OpenCV(4.6.0) <file>:<line>: error:
// (-2:Unspecified error) <why> in function '<f>'") without the call's name, else its
// logger's warnings; at most ~300 characters.
std::string OpenCvDiagnostics(std::string_view printed) {
  std::string errors, warnings;
  while (!printed.empty()) {
    const std::size_t end = std::min(printed.find('\n'), printed.size());
    std::string_view line = printed.substr(0, end);
    printed.remove_prefix(std::min(end + 1, printed.size()));
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
      line.remove_suffix(1);
    }
    if (line.empty()) continue;
    if (line.starts_with("imdecode_('')")) {  // the call's name, then ": "
      line.remove_prefix(std::min(line.find(": ") + 2, line.size()));
    }
    std::string& into = line.starts_with("[") ? warnings : errors;
    if (!into.empty()) into += "; ";
    into += line;
  }
  std::string text = errors.empty() ? warnings : errors;
  if (text.size() > 300) text = text.substr(0, 297) + "...";
  return text;
}

}  // namespace

void DecodeStage::PlanFor(const Stage* next) {
  const auto* resize = dynamic_cast<const ResizeStage*>(next);
  reduction_ = resize == nullptr ? DecodeReduction{} : resize->DecodeNeeds();
}

void DecodeStage::ProcessOne(Record& record) {
  const Value* body_value = record.Find("body");
  const Bytes* body = body_value == nullptr ? nullptr : std::get_if<Bytes>(body_value);
  if (body == nullptr) {
    record.Fail(FailureReason::kNotImage, "decode: no \"body\" bytes to decode");
    return;
  }
  const std::span<const std::uint8_t> bytes(*body);
  if (options_.extract_exif) {
    std::optional<std::string> exif = ExifJson(bytes);
    if (exif.has_value()) record.Set("exif", std::move(*exif));
  }
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    record.Fail(
        FailureReason::kTooLarge,
        fmt::format("decode: {} bytes is over the 2 GiB OpenCV can take", bytes.size()));
    return;
  }
  const std::optional<ImageHeader> header = ReadImageHeader(bytes);
  if (!header.has_value()) {
    record.Fail(
        FailureReason::kNotImage,
        fmt::format("decode: {} bytes of no supported image format", bytes.size()));
    return;
  }
  const std::string_view format = ImageFormatName(header->format);
  if (header->format != ImageFormat::kTiff && !header->dimensions_known) {
    record.Fail(
        FailureReason::kDecode,
        fmt::format("decode: unreadable {} header ({} bytes)", format, bytes.size()));
    return;
  }
  if (header->dimensions_known && header->width * header->height > options_.max_pixels) {
    record.Fail(FailureReason::kTooLarge,
                fmt::format("decode: {} declares {}x{} pixels, over max_pixels {}",
                            format, header->width, header->height, options_.max_pixels));
    return;
  }

  cv::Mat image;
  const bool keep_gray = options_.keep_grayscale;
  // When OpenCV decodes: colour (or gray kept as it is), the EXIF orientation
  // applied by OpenCV itself unless it is ignored; with alpha, as stored.
  int flags = (keep_gray ? cv::IMREAD_ANYCOLOR : cv::IMREAD_COLOR) |
              (options_.apply_exif_orientation ? 0 : cv::IMREAD_IGNORE_ORIENTATION);
  bool composited = false;  // alpha blended on white
  if (header->format == ImageFormat::kJpeg) {
    const int scale = JpegScaleEighths(
        reduction_.longer_side ? std::max(header->width, header->height)
                               : std::min(header->width, header->height),
        reduction_.side_at_least);
    JpegDecodeResult jpeg = DecodeJpeg(bytes, scale, keep_gray);
    if (!jpeg.pixels.empty()) {
      image = options_.apply_exif_orientation
                  ? Orient(std::move(jpeg.pixels), header->orientation)
                  : std::move(jpeg.pixels);
    } else if (!jpeg.unsupported_color) {
      record.Fail(FailureReason::kDecode,
                  fmt::format("decode: jpeg ({} bytes): {}", bytes.size(), jpeg.error));
      return;
    }
  } else if (header->format == ImageFormat::kPng || header->format == ImageFormat::kGif ||
             header->format == ImageFormat::kWebp) {
    auto [pixels, error] =
        DecodeWithLibrary(header->format, bytes, options_.max_pixels, keep_gray);
    if (pixels.empty()) {
      record.Fail(FailureReason::kDecode,
                  fmt::format("decode: {} ({} bytes): {}", format, bytes.size(), error));
      return;
    }
    composited = pixels.channels() == 4;
    image = ToBgr8(std::move(pixels), keep_gray);
  } else if (header->has_alpha) {
    flags = cv::IMREAD_UNCHANGED;  // as stored: no EXIF rotation either
    composited = true;
  }

  if (image.empty()) {
    Result<const OpenCvCodecs*> codecs = LoadOpenCvCodecs();
    if (!codecs.ok()) {
      record.Fail(FailureReason::kInternal,
                  fmt::format("decode: {}: {}", format, codecs.status().message()));
      return;
    }
    std::string diagnostics;
    try {
      // imdecode wants a Mat; this one wraps the bytes without copying them.
      const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8UC1,
                           const_cast<std::uint8_t*>(bytes.data()));
      {
        // Why a decode failed, OpenCV only prints: keep it for the item instead.
        const CerrCapture capture;
        image = (*codecs)->imdecode(buffer, flags);
        diagnostics = OpenCvDiagnostics(capture.text());
      }
      if (!image.empty() && image.type() != CV_8UC3) {
        composited = composited && image.channels() == 4;
        image = ToBgr8(std::move(image), keep_gray);
      }
    } catch (const cv::Exception& e) {
      record.Fail(FailureReason::kDecode,
                  fmt::format("decode: {}: OpenCV: {}", format, e.what()));
      return;
    }
    if (image.empty()) {
      record.Fail(
          FailureReason::kDecode,
          fmt::format("decode: OpenCV could not decode the {} image ({} bytes){}{}",
                      format, bytes.size(), diagnostics.empty() ? "" : ": ",
                      diagnostics));
      return;
    }
  }

  std::int64_t width = header->width;
  std::int64_t height = header->height;
  if (!header->dimensions_known) {  // TIFF: only now do we know
    width = image.cols;
    height = image.rows;
    if (width * height > options_.max_pixels) {
      record.Fail(FailureReason::kTooLarge,
                  fmt::format("decode: {} is {}x{} pixels, over max_pixels {}", format,
                              width, height, options_.max_pixels));
      return;
    }
  } else if (header->orientation >= 5 && options_.apply_exif_orientation &&
             flags != cv::IMREAD_UNCHANGED) {
    std::swap(width, height);  // Orient() or OpenCV made a 90-degree rotation
  }

  record.Set("width", width);
  record.Set("height", height);
  record.Set("format", std::string(format));
  // The pixels are the source as it is unless decoded at reduced size, rotated by
  // its EXIF orientation, or composited on white (src/stages/image.h).
  const bool rotated = options_.apply_exif_orientation && header->orientation != 1 &&
                       flags != cv::IMREAD_UNCHANGED;
  const bool source_pixels =
      !composited && !rotated && image.cols == width && image.rows == height;
  record.Set(kImageField, std::shared_ptr<const Payload>(std::make_shared<ImagePayload>(
                              std::move(image), width, height, source_pixels)));
}

}  // namespace sluice
