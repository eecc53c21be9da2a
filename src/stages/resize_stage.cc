#include "src/stages/resize_stage.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <utility>

#include "src/stages/area_resize.h"
#include "src/stages/image.h"

namespace sluice {
namespace {

// Python's round() (half to even), which albumentations uses for the scaled side;
// std::nearbyint rounds half to even in the default rounding mode.
int RoundSide(double side) { return std::max(1, static_cast<int>(std::nearbyint(side))); }

}  // namespace

ScaledSize ScaleForMode(int width, int height, int size, ResizeMode mode) {
  int reference = 0;
  switch (mode) {
    case ResizeMode::kNo:
      return {width, height};
    case ResizeMode::kKeepRatio:
    case ResizeMode::kCenterCrop:
      reference = std::min(width, height);
      break;
    case ResizeMode::kKeepRatioLargest:
    case ResizeMode::kBorder:
      reference = std::max(width, height);
      break;
  }
  if (reference == size) return {width, height};
  const double scale = static_cast<double>(size) / reference;
  return {RoundSide(width * scale), RoundSide(height * scale)};
}

DecodeReduction ResizeStage::DecodeNeeds() const {
  if (options_.mode == ResizeMode::kNo) return {};
  return DecodeReduction{
      .side_at_least = static_cast<std::int64_t>(std::ceil(kReducedDecodeMargin * options_.size)),
      .longer_side = options_.mode == ResizeMode::kBorder ||
                     options_.mode == ResizeMode::kKeepRatioLargest};
}

void ResizeStage::ProcessOne(Record& record) {
  const ImagePayload* image = FindImage(record);
  if (image == nullptr) {
    record.Fail(FailureReason::kStage, "resize: no \"image\" payload (run decode first)");
    return;
  }
  const std::int64_t original_width = image->original_width();
  const std::int64_t original_height = image->original_height();
  const std::int64_t smaller = std::min(original_width, original_height);
  const std::int64_t larger = std::max(original_width, original_height);
  if (smaller < options_.min_size) {
    record.Fail(FailureReason::kTooSmall,
                fmt::format("resize: {}x{} has a side under min_size {}", original_width,
                            original_height, options_.min_size));
    return;
  }
  if (options_.max_aspect_ratio > 0 &&
      (smaller <= 0 || static_cast<double>(larger) / static_cast<double>(smaller) >
                           options_.max_aspect_ratio)) {
    record.Fail(FailureReason::kAspectRatio,
                fmt::format("resize: {}x{} is more elongated than max_aspect_ratio {}",
                            original_width, original_height, options_.max_aspect_ratio));
    return;
  }

  if (larger > std::numeric_limits<int>::max()) {
    record.Fail(FailureReason::kTooLarge,
                fmt::format("resize: {}x{} has a side over 2^31 - 1 pixels",
                            original_width, original_height));
    return;
  }
  const int size = options_.size;
  const ResizeMode mode = options_.mode;
  const bool by_larger = mode == ResizeMode::kBorder || mode == ResizeMode::kKeepRatioLargest;
  // img2dataset decides "downscale" on the original image's sides.
  const bool downscale = by_larger ? larger > size : smaller > size;
  const bool act =
      mode != ResizeMode::kNo && (!options_.resize_only_if_bigger || downscale);
  cv::Mat pixels = image->pixels();
  if (act) {
    // The geometry of the original image, whatever scale its pixels were decoded at.
    const ScaledSize scaled = ScaleForMode(static_cast<int>(original_width),
                                           static_cast<int>(original_height), size, mode);
    const cv::Size to(scaled.width, scaled.height);
    const bool resize = to != pixels.size();
    // The pixels held are never smaller than `to` when shrinking (decode keeps the
    // scaled side at least the target), so the area filter only ever shrinks.
    const bool shrink = downscale && to.width <= pixels.cols && to.height <= pixels.rows;
    // albumentations pad: the smaller half of the padding on top / left.
    if (mode == ResizeMode::kBorder && resize && shrink &&
        (to.width < size || to.height < size)) {
      // The area filter writes straight into the white canvas: no copy of its result.
      cv::Mat canvas(size, size, pixels.type(), cv::Scalar::all(255));
      cv::Mat inside = canvas(
          cv::Rect((size - to.width) / 2, (size - to.height) / 2, to.width, to.height));
      AreaResizeInto(pixels, inside);
      pixels = std::move(canvas);
    } else {
      if (resize) {
        if (shrink) {
          pixels = AreaResize(pixels, to);  // INTER_AREA's result, faster
        } else {
          cv::Mat resized;
          cv::resize(pixels, resized, to, 0, 0,
                     downscale ? cv::INTER_AREA : cv::INTER_LANCZOS4);
          pixels = std::move(resized);
        }
      }
      if (mode == ResizeMode::kCenterCrop) {
        // albumentations center_crop: offsets (side - size) / 2, rounded down. A
        // side already under `size` cannot happen after smallest_max_size.
        const int crop_w = std::min(size, pixels.cols);
        const int crop_h = std::min(size, pixels.rows);
        const cv::Rect rect((pixels.cols - crop_w) / 2, (pixels.rows - crop_h) / 2,
                            crop_w, crop_h);
        pixels = pixels(rect).clone();
      } else if (mode == ResizeMode::kBorder) {
        const int pad_h = std::max(0, size - pixels.rows);
        const int pad_w = std::max(0, size - pixels.cols);
        if (pad_h > 0 || pad_w > 0) {
          cv::Mat padded;
          cv::copyMakeBorder(pixels, padded, pad_h / 2, pad_h - pad_h / 2, pad_w / 2,
                             pad_w - pad_w / 2, cv::BORDER_CONSTANT,
                             cv::Scalar(255, 255, 255));
          pixels = std::move(padded);
        }
      }
    }
  }

  record.Set("resized_width", std::int64_t{pixels.cols});
  record.Set("resized_height", std::int64_t{pixels.rows});
  if (pixels.data != image->pixels().data || pixels.size() != image->pixels().size()) {
    record.Set(kImageField, std::shared_ptr<const Payload>(std::make_shared<ImagePayload>(
                                std::move(pixels), original_width, original_height)));
  }
}

}  // namespace sluice
