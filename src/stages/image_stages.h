// Registration of the image stages: "decode" (src/stages/decode_stage.h),
// "resize" (src/stages/resize_stage.h) and "encode" (src/stages/encode_stage.h),
// with their YAML options:
//
//   decode   max_pixels:  refuse images over this many pixels, 1..2^40, default 8e7
//            exif_orientation: apply | ignore, default apply
//            keep_grayscale: keep gray sources one channel, default false
//            (no scale option: the reduced JPEG scale is planned from the resize
//            right after decode, src/stages/decode_stage.h)
//   resize   size:        target side, 1..65536, default 256
//            mode:        no | keep_ratio | keep_ratio_largest | center_crop |
//                         border, default keep_ratio
//            resize_only_if_bigger: bool, default false
//            min_size:    smaller side under it fails (too_small), 0..65536, default 0
//            max_aspect_ratio: longer/shorter side over it fails (aspect_ratio),
//                         0 (off) or >= 1, default 0
//   encode   format:      jpg | png | webp, default jpg
//            quality:     jpg and webp, 1..100, default 95
//            png_compression: png, 0..9, default 3
//            keep_body:   keep the source "body" bytes after encoding, default false
//            keep_image:  keep the "image" pixels after encoding, default false
#ifndef SLUICE_STAGES_IMAGE_STAGES_H_
#define SLUICE_STAGES_IMAGE_STAGES_H_

#include "sluice/stage.h"

namespace sluice {

// Registers "decode", "resize" and "encode". Out-of-range values are recorded in the
// StageOptions and reported by its Finish().
// Fails if one of the names is registered already.
Status RegisterImageStages(StageRegistry& registry);

}  // namespace sluice

#endif  // SLUICE_STAGES_IMAGE_STAGES_H_
