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
// Fails:   kNotImage  no "body", or bytes of no supported image format (formats
//                     OpenCV could read but whose headers we do not check, such as
//                     PNM or OpenEXR, are refused on purpose)
//          kTooLarge  declared width*height over max_pixels, checked on the header
//                     before decoding (TIFF: after decoding, see image_header.h;
//                     OpenCV's own CV_IO_MAX_IMAGE_PIXELS cap, 2^30, still applies)
//          kDecode    the header is unreadable or OpenCV cannot decode the bytes
//
// How pixels are made:
//  - JPEG: libjpeg-turbo directly (jpeg_codec.h), BGR out, then the EXIF
//    orientation applied. With `target_size` set, a JPEG larger than the target is
//    decoded at the smallest scale of 1/8, 2/8 and 4/8 that keeps the side named by
//    `target_side` at least target_size: `shorter` (the default) for resize modes
//    that scale the shorter side (keep_ratio, center_crop), `longer` for `border`.
//    A 1,200 x 900 photo bound for border 256 decodes at 2/8, as 300 x 225: the
//    IDCT does most of the downscaling, several times faster than a full decode.
//    CMYK and YCCK JPEGs, which libjpeg cannot make BGR, go through
//    cv::IMREAD_COLOR at full size.
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
  std::int64_t target_size = 0;  // "target_size": resize target side; 0: full decode
  // "target_side": which side must stay >= target_size, `shorter` or `longer`.
  bool target_longer_side = false;
};

class DecodeStage final : public CpuStage {
 public:
  explicit DecodeStage(DecodeOptions options) : options_(options) {
    KeepOpenCvOnCallerThreads();
  }

  void ProcessOne(Record& record) override;

 private:
  const DecodeOptions options_;
};

}  // namespace sluice

#endif  // SLUICE_STAGES_DECODE_STAGE_H_
