// resize: brings decoded images to a target size, and filters out images that are
// too small or too elongated.
//
// Reads:   "image"  ImagePayload (src/stages/image.h); its original width/height
//                   decide the filters AND the output size, as decode may have
//                   reduced the pixels (a JPEG decoded at 1/2, 1/4 or 1/8 scale)
// Writes:  "image"  a new ImagePayload with the resized pixels (original size kept)
//          "resized_width", "resized_height"  int64, of the pixels now held
// Fails:   kStage        no "image" payload (decode must run first)
//          kTooSmall     smaller original side < min_size
//          kAspectRatio  longer / shorter original side > max_aspect_ratio
//
// Modes have img2dataset's meanings (rom1504/img2dataset, img2dataset/resizer.py,
// Resizer.__call__, read 2026-11):
//   no                  pixels untouched
//   keep_ratio          the SMALLER side becomes `size`, ratio kept
//                       (albumentations smallest_max_size: scale = size / side,
//                       each side = round(side * scale), half to even)
//   keep_ratio_largest  the LARGER side becomes `size`, ratio kept, no padding
//                       (albumentations longest_max_size)
//   center_crop         keep_ratio, then a size x size crop at offsets
//                       ((w - size) / 2, (h - size) / 2), rounded down
//   border              keep_ratio_largest, then padded to size x size with WHITE
//                       (BORDER_CONSTANT, value 255), the smaller half of each
//                       padding on the top / left
// Every size and offset is computed from the ORIGINAL image size, never from the
// pixels held, so a reduced decode gives img2dataset's geometry exactly; the pixels
// are then area-resized to that size.
// resize_only_if_bigger: keep_ratio/center_crop resize only when the smaller side is
// > size, border/keep_ratio_largest only when the larger side is > size; otherwise
// the image is left untouched (not even cropped or padded), exactly as img2dataset
// does.
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

enum class ResizeMode : std::uint8_t {
  kNo,
  kKeepRatio,
  kKeepRatioLargest,
  kCenterCrop,
  kBorder
};

struct ResizeOptions {
  int size = 256;                            // "size": target side in pixels
  ResizeMode mode = ResizeMode::kKeepRatio;  // "mode", see above
  bool resize_only_if_bigger = false;        // "resize_only_if_bigger": never enlarge
  std::int64_t min_size = 0;                 // "min_size": fail smaller images; 0: off
  double max_aspect_ratio = 0;  // "max_aspect_ratio": fail longer ones; 0: off
};

// A reduced decode keeps the scaled side at least this many times the target side.
// Measured against a full decode (docs/benchmarks.md, "Reduced JPEG decode
// fidelity", bench/decode_fidelity.cc): with 1 the reduced images differ by a mean
// of 2.4-3.0 levels at size 256, more than the ~1.7-2.2 img2dataset's own q95
// re-encoding adds; with 2 by 0.9-1.2, at 55-60% of a full decode's CPU time.
inline constexpr double kReducedDecodeMargin = 2.0;

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
  StageFields Fields() const override {
    return DeclaredFields({"image"}, {"image", "resized_width", "resized_height"});
  }

  const ResizeOptions& options() const { return options_; }

  // How far a JPEG may be reduced when decoded for this resize (decode plans its
  // scale with it): the side this mode scales must keep at least
  // kReducedDecodeMargin x size pixels. None for mode `no`.
  DecodeReduction DecodeNeeds() const;

 private:
  const ResizeOptions options_;
};

}  // namespace sluice

#endif  // SLUICE_STAGES_RESIZE_STAGE_H_
