// The decoded image that the image stages pass along a record.
//
// Fields (set by the decode stage, src/stages/decode_stage.h):
//   "image"   std::shared_ptr<const Payload> holding an ImagePayload
//   "width", "height"  int64: the ORIGINAL image's size (after EXIF rotation), which
//                      may be larger than the pixels held when decoded at reduced size
//
// The pixels are 8-bit BGR with 3 channels (CV_8UC3), whatever the source: grayscale
// is expanded, 16-bit scaled down, alpha composited on white. The one exception is
// decode's keep_grayscale: a gray source then stays 8-bit gray (CV_8UC1), and every
// image stage takes both. Stages that
// change the pixels (resize) make a new payload rather than edit a shared one.
//
// source_pixels(): true when the pixels are the source image ("body") as it is,
// so that a stage saving the image may keep the source bytes instead of encoding
// the pixels again (encode, src/stages/encode_stage.h). Decode sets it only for a
// full-size decode with no EXIF rotation and no alpha compositing (grayscale or
// 16-bit samples brought to 8-bit BGR still count: the source shows the same
// picture). A new payload is NOT source pixels unless its maker says so, so any
// stage that derives new pixels clears it by constructing the payload normally;
// a stage that keeps the payload (resize when nothing needs resizing) keeps it.
//
// Thread-safety: immutable after construction; records share it read-only.
#ifndef SLUICE_STAGES_IMAGE_H_
#define SLUICE_STAGES_IMAGE_H_

#include <cstdint>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <string_view>
#include <utility>

#include "sluice/record.h"
#include "sluice/status.h"

namespace sluice {

inline constexpr char kImageField[] = "image";

// What a format's own decoder returns (png_codec.h, gif_codec.h, webp_codec.h):
// 8-bit BGR or BGRA pixels as the codec's header says, or why there are none.
struct DecodedPixels {
  cv::Mat pixels;     // empty on failure
  std::string error;  // why pixels is empty
};

// How far decode may reduce a JPEG for the stage after it: the side the next stage
// scales (the longer or the shorter one) must keep at least side_at_least pixels.
// side_at_least 0: decode at full size.
struct DecodeReduction {
  std::int64_t side_at_least = 0;
  bool longer_side = false;
};

class ImagePayload final : public Payload {
 public:
  // REQUIRES: `pixels` is CV_8UC3 (BGR) or CV_8UC1 (gray). The payload takes a reference
  // to the matrix's buffer: the caller must not write to it afterwards. `source_pixels`:
  // see the top of the file; only decode passes true.
  ImagePayload(cv::Mat pixels, std::int64_t original_width, std::int64_t original_height,
               bool source_pixels = false)
      : pixels_(std::move(pixels)),
        original_width_(original_width),
        original_height_(original_height),
        source_pixels_(source_pixels) {}

  const cv::Mat& pixels() const { return pixels_; }
  int width() const { return pixels_.cols; }
  int height() const { return pixels_.rows; }
  std::int64_t original_width() const { return original_width_; }
  std::int64_t original_height() const { return original_height_; }
  // True when the pixels are the undecoded source image as it is (see above).
  bool source_pixels() const { return source_pixels_; }

  // "image WxH" of the pixels held.
  std::string Describe() const override {
    return "image " + std::to_string(pixels_.cols) + "x" + std::to_string(pixels_.rows);
  }

  // Carried to a later stage group as its pixels, each after the first row as the
  // difference to the one above it (DecodeImagePayload reads them back; the
  // record codec compresses them). The name changes with the layout: a payload
  // written in another layout is refused as of unknown type, never misread.
  std::string_view codec() const override { return kCodec; }
  void Encode(std::string& out) const override;
  static constexpr char kCodec[] = "image-v2";

 private:
  const cv::Mat pixels_;
  const std::int64_t original_width_;
  const std::int64_t original_height_;
  const bool source_pixels_;
};

// Reads back what ImagePayload::Encode wrote (Corruption if it is not that).
Result<std::shared_ptr<const Payload>> DecodeImagePayload(std::string_view bytes);

// The record's ImagePayload, or nullptr when "image" is unset or holds another type.
inline const ImagePayload* FindImage(const Record& record) {
  const Value* value = record.Find(kImageField);
  if (value == nullptr) return nullptr;
  const auto* payload = std::get_if<std::shared_ptr<const Payload>>(value);
  if (payload == nullptr) return nullptr;
  return dynamic_cast<const ImagePayload*>(payload->get());
}

// Makes OpenCV run its functions on the calling thread. The runtime's CPU pool
// already runs one chunk per core; OpenCV's own pool inside it would oversubscribe
// the cores (and run code ThreadSanitizer cannot see). Called by the image stages'
// constructors; the first call wins, the rest cost one branch.
inline void KeepOpenCvOnCallerThreads() {
  static const bool done = [] {
    cv::setNumThreads(0);
    return true;
  }();
  (void)done;
}

}  // namespace sluice

#endif  // SLUICE_STAGES_IMAGE_H_
