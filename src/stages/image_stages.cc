#include "src/stages/image_stages.h"

#include <memory>
#include <string>

#include "src/stages/decode_stage.h"
#include "src/stages/encode_stage.h"
#include "src/stages/image.h"
#include "src/stages/resize_stage.h"

namespace sluice {
namespace {

Result<std::unique_ptr<Stage>> MakeDecode(StageOptions& options) {
  DecodeOptions decode;
  decode.max_pixels =
      options.GetInt("max_pixels", decode.max_pixels, 1, std::int64_t{1} << 40);
  decode.apply_exif_orientation =
      options.GetChoice("exif_orientation", "apply", {"apply", "ignore"}) == "apply";
  decode.keep_grayscale = options.GetBool("keep_grayscale", false);
  decode.extract_exif = options.GetBool("extract_exif", false);
  // Earlier pipelines set the reduced scale by hand; it now follows the resize.
  for (const char* removed : {"target_size", "target_side"}) {
    if (!options.GetString(removed, "").empty()) {
      options.AddError(removed,
                       "no longer an option: decode plans its reduced JPEG scale from "
                       "the resize stage right after it (remove the key)");
    }
  }
  return std::unique_ptr<Stage>(std::make_unique<DecodeStage>(decode));
}

Result<std::unique_ptr<Stage>> MakeResize(StageOptions& options) {
  ResizeOptions resize;
  resize.size = static_cast<int>(options.GetInt("size", 256, 1, 65536));
  const std::string mode = options.GetChoice(
      "mode", "keep_ratio",
      {"no", "keep_ratio", "keep_ratio_largest", "center_crop", "border"});
  if (mode == "no") {
    resize.mode = ResizeMode::kNo;
  } else if (mode == "keep_ratio_largest") {
    resize.mode = ResizeMode::kKeepRatioLargest;
  } else if (mode == "center_crop") {
    resize.mode = ResizeMode::kCenterCrop;
  } else if (mode == "border") {
    resize.mode = ResizeMode::kBorder;
  } else {
    resize.mode = ResizeMode::kKeepRatio;
  }
  resize.resize_only_if_bigger = options.GetBool("resize_only_if_bigger", false);
  resize.min_size = options.GetInt("min_size", 0, 0, 65536);
  resize.max_aspect_ratio = options.GetDouble("max_aspect_ratio", 0, 0, 1e9);
  if (resize.max_aspect_ratio > 0 && resize.max_aspect_ratio < 1) {
    // Every image's ratio is >= 1: such a cap would fail them all.
    options.AddError("max_aspect_ratio", "must be 0 (off) or at least 1");
  }
  return std::unique_ptr<Stage>(std::make_unique<ResizeStage>(resize));
}

Result<std::unique_ptr<Stage>> MakeEncode(StageOptions& options) {
  EncodeOptions encode;
  const std::string format = options.GetChoice("format", "jpg", {"jpg", "png", "webp"});
  if (format == "png") {
    encode.format = EncodeFormat::kPng;
  } else if (format == "webp") {
    encode.format = EncodeFormat::kWebp;
  }
  // -1: not given, so that an option of the other format is reported, not ignored.
  const std::int64_t quality = options.GetInt("quality", -1, 1, 100);
  const std::int64_t png_compression = options.GetInt("png_compression", -1, 0, 9);
  if (quality >= 0) {
    if (encode.format == EncodeFormat::kPng) {
      options.AddError("quality", "applies to jpg and webp; png takes png_compression");
    }
    encode.quality = static_cast<int>(quality);
  }
  if (png_compression >= 0) {
    if (encode.format != EncodeFormat::kPng) {
      options.AddError("png_compression", "applies to png only; use quality");
    }
    encode.png_compression = static_cast<int>(png_compression);
  }
  encode.keep_body = options.GetBool("keep_body", false);
  encode.skip_reencode = options.GetBool("skip_reencode", true);
  encode.keep_image = options.GetBool("keep_image", false);
  return std::unique_ptr<Stage>(std::make_unique<EncodeStage>(encode));
}

}  // namespace

Status RegisterImageStages(StageRegistry& registry) {
  SLUICE_RETURN_IF_ERROR(registry.Register(
      "decode", "decodes \"body\" bytes into an \"image\" (OpenCV)", MakeDecode));
  SLUICE_RETURN_IF_ERROR(registry.Register(
      "resize", "resizes \"image\" (modes as img2dataset's) and filters by size",
      MakeResize));
  SLUICE_RETURN_IF_ERROR(registry.Register(
      "encode", "encodes \"image\" as jpg, png or webp into \"encoded\" (OpenCV)",
      MakeEncode));
  return registry.RegisterPayloadDecoder(ImagePayload::kCodec, DecodeImagePayload);
}

}  // namespace sluice
