// resize: brings decoded images to a target size, and filters out images that are
// too small or too elongated.
//
// Reads:   "image"  ImagePayload (src/stages/image.h); its original width/height
//                   decide the filters, as decode may have reduced the pixels
// Writes:  "image"  a new ImagePayload with the resized pixels (original size kept)
//          "resized_width", "resized_height"  int64, of the pixels now held
// Fails:   kStage        no "image" payload (decode must run first)
//          kTooSmall     smaller original side < min_size
//          kAspectRatio  longer / shorter original side > max_aspect_ratio
//
// Modes have img2dataset's meanings (rom1504/img2dataset, img2dataset/resizer.py,
// Resizer.__call__, read 2026-11):
//   no           pixels untouched
//   keep_ratio   the SMALLER side becomes `size`, ratio kept
//                (albumentations smallest_max_size: other side = round(side * scale))
//   center_crop  keep_ratio, then a centred size x size crop
//   border       the LARGER side becomes `size`, ratio kept, then padded to
//                size x size with WHITE (BORDER_CONSTANT, value 255), centred
// resize_only_if_bigger: keep_ratio/center_crop resize only when the smaller side is
// > size, border only when the larger side is > size; otherwise the image is left
// untouched (not even cropped or padded), exactly as img2dataset does.
// Interpolation: INTER_AREA when shrinking, INTER_LANCZOS4 when enlarging (the same
// "downscale" test as img2dataset).
//
// Thread-safety: immutable after construction; chunks may run concurrently.
#ifndef SLUICE_STAGES_RESIZE_STAGE_H_
#define SLUICE_STAGES_RESIZE_STAGE_H_

#include <cstdint>

#include "sluice/record.h"
#include "sluice/stage.h"
#include "src/stages/image.h"

namespace sluice {

enum class ResizeMode : std::uint8_t { kNo, kKeepRatio, kCenterCrop, kBorder };

struct ResizeOptions {
  int size = 256;                            // "size": target side in pixels
  ResizeMode mode = ResizeMode::kKeepRatio;  // "mode": no|keep_ratio|center_crop|border
  bool resize_only_if_bigger = false;        // "resize_only_if_bigger": never enlarge
  std::int64_t min_size = 0;                 // "min_size": fail smaller images; 0: off
  double max_aspect_ratio = 0;  // "max_aspect_ratio": fail longer ones; 0: off
};

// The size (width, height) an image of `width` x `height` has after the mode's
// scaling step, before cropping or padding. Exposed for tests.
struct ScaledSize {
  int width;
  int height;
};
ScaledSize ScaleForMode(int width, int height, int size, ResizeMode mode);

class ResizeStage final : public CpuStage {
 public:
  explicit ResizeStage(ResizeOptions options) : options_(options) {
    KeepOpenCvOnCallerThreads();
  }

  void ProcessOne(Record& record) override;

 private:
  const ResizeOptions options_;
};

}  // namespace sluice

#endif  // SLUICE_STAGES_RESIZE_STAGE_H_
