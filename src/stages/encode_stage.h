// encode: turns the pixels back into image file bytes, for the outputs to save.
//
// Reads:   "image"   ImagePayload (src/stages/image.h)
//          "body", "format"  the source bytes and decode's format name, to skip
//                    re-encoding (below)
// Writes:  "encoded" Bytes, the image file (what output.image_field saves by default)
//          "ext"     string: jpg, png or webp, the file extension of "encoded"
//          "encoded_bytes"  int64: the size of "encoded" (a result field)
// Removes: "body", unless keep_body: the source bytes are not needed any more, and a
//          batch in flight holds one copy fewer
//          "image", unless keep_image: the pixels, for the same reason (a finished
//          record waits in memory until its whole batch is done)
// Fails:   kStage    no "image" payload (decode must run first), or OpenCV could not
//                    encode it
//
// Skipping re-encoding: when the pixels are the source's as they are
// (ImagePayload::source_pixels(): not resized, not decoded at reduced size, not
// rotated, no alpha composited) and decode's "format" is the target format, the
// source "body" bytes become "encoded" unchanged: no generation loss, no CPU spent.
// Options quality and png_compression then do not apply. skip_reencode: false turns
// this off (img2dataset's default: every output is re-encoded).
//
// Formats and their options (OpenCV's imencode parameters):
//   jpg   quality 1..100 (IMWRITE_JPEG_QUALITY), default 95; encoded by libjpeg-turbo
//         directly (jpeg_codec.h), the same bytes as imencode, faster
//   png   png_compression 0..9 (IMWRITE_PNG_COMPRESSION, zlib level), default 3;
//         lossless whatever the level
//   webp  quality 1..100 (IMWRITE_WEBP_QUALITY, lossy), default 95
//
// Thread-safety: immutable after construction; chunks may run concurrently.
#ifndef SLUICE_STAGES_ENCODE_STAGE_H_
#define SLUICE_STAGES_ENCODE_STAGE_H_

#include <cstdint>
#include <string_view>

#include "sluice/record.h"
#include "sluice/stage.h"
#include "src/stages/image.h"

namespace sluice {

enum class EncodeFormat : std::uint8_t { kJpg, kPng, kWebp };

struct EncodeOptions {
  EncodeFormat format = EncodeFormat::kJpg;  // "format": jpg, png or webp
  int quality = 95;                          // "quality": jpg and webp, 1..100
  int png_compression = 3;                   // "png_compression": png, 0..9
  bool keep_body = false;  // "keep_body": keep the source "body" bytes after encoding
  bool keep_image = false;  // "keep_image": keep the "image" pixels after encoding
  // "skip_reencode": pass unchanged source bytes through (above); false re-encodes
  // every image, as img2dataset does by default (its --skip_reencode False).
  bool skip_reencode = true;
};

// The file extension of `format` ("jpg", "png", "webp"), also the "ext" field.
std::string_view EncodeFormatExtension(EncodeFormat format);

class EncodeStage final : public CpuStage {
 public:
  explicit EncodeStage(EncodeOptions options) : options_(options) {
    KeepOpenCvOnCallerThreads();
  }

  void ProcessOne(Record& record) override;
  StageFields Fields() const override {
    return DeclaredFields({"image"}, {"encoded", "ext", "encoded_bytes"});
  }

 private:
  // True when `record`'s "body" may be saved as it is (see the top of the file).
  bool CanKeepSource(const Record& record, const ImagePayload& image) const;

  const EncodeOptions options_;
};

}  // namespace sluice

#endif  // SLUICE_STAGES_ENCODE_STAGE_H_
