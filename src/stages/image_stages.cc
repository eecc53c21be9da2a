#include "src/stages/image_stages.h"

#include <memory>
#include <string>

#include "src/stages/decode_stage.h"
#include "src/stages/resize_stage.h"

namespace sluice {
namespace {

Result<std::unique_ptr<Stage>> MakeDecode(StageOptions& options) {
  DecodeOptions decode;
  decode.max_pixels =
      options.GetInt("max_pixels", decode.max_pixels, 1, std::int64_t{1} << 40);
  decode.target_size = options.GetInt("target_size", 0, 0, 65536);
  return std::unique_ptr<Stage>(std::make_unique<DecodeStage>(decode));
}

Result<std::unique_ptr<Stage>> MakeResize(StageOptions& options) {
  ResizeOptions resize;
  resize.size = static_cast<int>(options.GetInt("size", 256, 1, 65536));
  const std::string mode = options.GetChoice(
      "mode", "keep_ratio", {"no", "keep_ratio", "center_crop", "border"});
  if (mode == "no") {
    resize.mode = ResizeMode::kNo;
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

}  // namespace

void RegisterImageStages(StageRegistry& registry) {
  registry.Register("decode", "decodes \"body\" bytes into an \"image\" (OpenCV)",
                    MakeDecode);
  registry.Register("resize",
                    "resizes \"image\" (modes as img2dataset's) and filters by size",
                    MakeResize);
}

}  // namespace sluice
