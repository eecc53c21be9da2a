// WebP decoding with libwebp: still images to BGR or BGRA, animated ones to their
// first frame.
//
// Why not cv::imdecode: OpenCV 4.6 reads no animated WebP (it fails on the ANIM
// container) and reports a failure only by printing. Still images decode to the
// pixels OpenCV gives (both are libwebp's WebPDecodeBGR/BGRA); an animated one
// decodes through libwebp's animation decoder, which draws the first frame onto the
// canvas with its offset and blending, transparent elsewhere. Errors name libwebp's
// status ("not enough data" for a cut file, "bitstream error" for corrupt data).
//
// The caller checks the declared canvas against its pixel cap first (the decode
// stage reads the header).
//
// Pure function, thread-safe.
#ifndef SLUICE_STAGES_WEBP_CODEC_H_
#define SLUICE_STAGES_WEBP_CODEC_H_

#include <cstdint>
#include <opencv2/core.hpp>
#include <span>

#include "src/stages/image.h"

namespace sluice {

// Pixels: CV_8UC4 BGRA when the image has alpha or is animated, else CV_8UC3 BGR.
struct WebpDecodeResult : DecodedPixels {
  bool animated = false;  // the file is an animation (pixels: its first frame)
};

WebpDecodeResult DecodeWebp(std::span<const std::uint8_t> bytes);

}  // namespace sluice

#endif  // SLUICE_STAGES_WEBP_CODEC_H_
