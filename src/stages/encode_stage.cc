#include "src/stages/encode_stage.h"

#include <fmt/format.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>  // flags only: the functions come from opencv_codecs.h
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "src/stages/jpeg_codec.h"
#include "src/stages/opencv_codecs.h"

namespace sluice {
namespace {

// Decode's "format" name for the images a format produces.
std::string_view DecodedFormatName(EncodeFormat format) {
  switch (format) {
    case EncodeFormat::kJpg:
      return "jpeg";
    case EncodeFormat::kPng:
      return "png";
    case EncodeFormat::kWebp:
      return "webp";
  }
  return "";
}

}  // namespace

std::string_view EncodeFormatExtension(EncodeFormat format) {
  switch (format) {
    case EncodeFormat::kJpg:
      return "jpg";
    case EncodeFormat::kPng:
      return "png";
    case EncodeFormat::kWebp:
      return "webp";
  }
  return "";
}

bool EncodeStage::CanKeepSource(const Record& record, const ImagePayload& image) const {
  if (!options_.skip_reencode || !image.source_pixels()) return false;
  const Value* format = record.Find("format");
  const auto* format_name =
      format == nullptr ? nullptr : std::get_if<std::string>(format);
  if (format_name == nullptr || *format_name != DecodedFormatName(options_.format)) {
    return false;
  }
  const Value* body = record.Find("body");
  return body != nullptr && std::holds_alternative<Bytes>(*body);
}

void EncodeStage::ProcessOne(Record& record) {
  const ImagePayload* image = FindImage(record);
  if (image == nullptr) {
    record.Fail(FailureReason::kStage, "encode: no \"image\" payload (run decode first)");
    return;
  }
  const std::string_view ext = EncodeFormatExtension(options_.format);
  Bytes encoded;
  if (CanKeepSource(record, *image)) {
    encoded = std::get<Bytes>(*record.Find("body"));
  } else {
    std::vector<int> params;
    switch (options_.format) {
      case EncodeFormat::kJpg:
        params = {cv::IMWRITE_JPEG_QUALITY, options_.quality};
        break;
      case EncodeFormat::kPng:
        params = {cv::IMWRITE_PNG_COMPRESSION, options_.png_compression};
        break;
      case EncodeFormat::kWebp:
        params = {cv::IMWRITE_WEBP_QUALITY, options_.quality};
        break;
    }
    bool ok = false;
    std::string why;
    if (options_.format == EncodeFormat::kJpg && image->pixels().type() == CV_8UC3) {
      JpegEncodeResult jpeg = EncodeJpeg(image->pixels(), options_.quality);
      ok = !jpeg.bytes.empty();
      encoded = std::move(jpeg.bytes);
      if (!ok) why = ": " + jpeg.error;
    } else if (Result<const OpenCvCodecs*> codecs = LoadOpenCvCodecs(); !codecs.ok()) {
      why = ": " + codecs.status().message();
    } else {
      try {
        ok = (*codecs)->imencode(fmt::format(".{}", ext), image->pixels(), encoded,
                                 params);
      } catch (const cv::Exception& e) {
        why = fmt::format(": OpenCV: {}", e.what());
      }
    }
    if (!ok) {
      record.Fail(FailureReason::kStage,
                  fmt::format("encode: could not encode the {}x{} image as {}{}",
                              image->width(), image->height(), ext, why));
      return;
    }
  }
  const auto size = static_cast<std::int64_t>(encoded.size());
  if (!options_.keep_body) record.Erase("body");
  // Last use of the pixels (`image` points into them): a finished record waits for
  // the rest of its batch, and decoded images would dominate the memory held.
  if (!options_.keep_image) record.Erase(kImageField);
  record.Set("encoded", std::move(encoded));
  record.Set("ext", std::string(ext));
  record.Set("encoded_bytes", size);
}

}  // namespace sluice
