// decode: turns downloaded image bytes into pixels, refusing what is unsafe or not an
// image before spending memory on it.
//
// Reads:   "body"   Bytes, the encoded image (kept: a later stage may save the
//                   original bytes unchanged)
// Writes:  "image"  ImagePayload (src/stages/image.h): 8-bit BGR pixels, marked
//                   source_pixels() for a full-size decode with no EXIF rotation
//                   and no alpha (then encode may keep "body" as it is)
//          "width", "height"  int64, of the original image after EXIF rotation
//          "format" string: jpeg, png, gif, webp, bmp or tiff
//          "exif"   string, with extract_exif: the image's EXIF tags as the JSON
//                   text img2dataset writes (src/stages/exif.h), "{}" without
//                   EXIF; unset where img2dataset writes None. Set before any
//                   check, so that an image that then fails has it too (as in
//                   img2dataset, which reads EXIF before decoding)
// Fails:   kNotImage  no "body", or bytes of no supported image format (formats
//                     OpenCV could read but whose headers we do not check, such as
//                     PNM or OpenEXR, are refused on purpose)
//          kTooLarge  declared width*height over max_pixels, checked on the header
//                     before decoding (TIFF: after decoding, see image_header.h;
//                     OpenCV's own CV_IO_MAX_IMAGE_PIXELS cap, 2^30, still applies)
//          kDecode    the header is unreadable or OpenCV cannot decode the bytes
//
// Options (YAML):
//   max_pixels        refuse images declaring more pixels (default 8e7)
//   exif_orientation  apply (default) | ignore: whether a JPEG's EXIF orientation
//                     turns the pixels upright. img2dataset ignores it, so that
//                     `ignore` gives its pixels; `apply` is the one default of ours
//                     that differs from img2dataset's (docs/img2dataset.md).
//   keep_grayscale    false (default) | true: a grayscale JPEG or PNG (without
//                     transparency), or a gray image OpenCV decodes, stays one
//                     channel (CV_8UC1) instead of being expanded to BGR, as
//                     img2dataset keeps it.
//   extract_exif      false (default) | true: write "exif" (img2dataset's
//                     --extract_exif, on by default there).
//
// How pixels are made:
//  - JPEG: libjpeg-turbo directly (jpeg_codec.h), BGR out, then the EXIF
//    orientation applied. The scale is planned from the stage after decode
//    (PlanFor): when it is a resize, a JPEG larger than the resize needs decodes at
//    the smallest scale of 1/8, 2/8 and 4/8 that keeps the side the resize mode
//    scales (the shorter one for keep_ratio and center_crop, the longer one for
//    border and keep_ratio_largest) at least ResizeStage::DecodeNeeds() pixels:
//    the IDCT does most of the downscaling, several times faster than a full
//    decode. The resize computes its output from the ORIGINAL size, so the scale
//    never changes what comes out beyond rounding noise (docs/benchmarks.md,
//    "Reduced JPEG decode fidelity"). Without a resize right after it (resize mode
//    `no`, another stage, the last stage), decode decodes at full size.
//    CMYK and YCCK JPEGs, which libjpeg cannot make BGR, go through OpenCV at full
//    size.
//  - Images whose header announces alpha (PNG color type 4/6 or tRNS, WebP alpha):
//    cv::IMREAD_UNCHANGED, then composited on white, as img2dataset does.
//  - Everything else: cv::IMREAD_COLOR (16-bit is scaled to 8-bit by OpenCV).
//  - GIF: OpenCV 4.6 has no GIF decoder; GIFs are recognised (format, size, pixel
//    cap) and then fail with kDecode.
//  - A truncated JPEG: libjpeg pads the missing rows (gray) and OpenCV returns the
//    image, so it decodes "successfully"; a truncated PNG or WebP fails with kDecode.
//
// Thread-safety: immutable after construction; chunks may run concurrently.
#ifndef SLUICE_STAGES_DECODE_STAGE_H_
#define SLUICE_STAGES_DECODE_STAGE_H_

#include <cstdint>

#include "sluice/record.h"
#include "sluice/stage.h"
#include "src/stages/image.h"

namespace sluice {

struct DecodeOptions {
  std::int64_t max_pixels = 80'000'000;  // "max_pixels": refuse larger images
  bool apply_exif_orientation = true;    // "exif_orientation": apply | ignore
  bool keep_grayscale = false;           // "keep_grayscale"
  bool extract_exif = false;             // "extract_exif": write the "exif" field
};

class DecodeStage final : public CpuStage {
 public:
  explicit DecodeStage(DecodeOptions options) : options_(options) {
    KeepOpenCvOnCallerThreads();
  }

  // Plans the JPEG scale for `next` (see the top of the file).
  void PlanFor(const Stage* next) override;
  void ProcessOne(Record& record) override;
  StageFields Fields() const override {
    StageFields fields =
        DeclaredFields({"body"}, {"image", "width", "height", "format"});
    if (options_.extract_exif) fields.writes.push_back("exif");
    return fields;
  }

  // What PlanFor() chose; side_at_least 0 means full-size decoding.
  const DecodeReduction& reduction() const { return reduction_; }

 private:
  const DecodeOptions options_;
  DecodeReduction reduction_;  // set by PlanFor() before any record
};

}  // namespace sluice

#endif  // SLUICE_STAGES_DECODE_STAGE_H_
