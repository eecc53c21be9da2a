// PNG decoding with libpng directly, to 8-bit BGR or BGRA.
//
// Why not cv::imdecode: OpenCV 4.6 gives libpng no error or warning handler, so a
// broken PNG prints "libpng error: ..." on the process's stderr (C stdio, out of
// CerrCapture's reach) and the item learns only that decoding failed; and a valid
// one with a common ancillary-chunk quirk ("iCCP: known incorrect sRGB profile")
// prints a warning. Here errors come back as the item's message and warnings are
// dropped. The pixels are those OpenCV gives: palettes and low bit depths expanded,
// gray to BGR, 16-bit scaled to 8 (rounded), tRNS transparency turned into alpha,
// interlacing undone, no gamma or colour-profile correction. Animated PNGs decode
// to their default image (the first frame).
//
// Hostile input: libpng reports fatal errors through a longjmp, caught here; the
// caller checks the declared size against its pixel cap before calling (the decode
// stage reads the header first), and libpng's own limits on chunk sizes stay on.
//
// Pure function, thread-safe.
#ifndef SLUICE_STAGES_PNG_CODEC_H_
#define SLUICE_STAGES_PNG_CODEC_H_

#include <cstdint>
#include <opencv2/core.hpp>
#include <span>

#include "src/stages/image.h"

namespace sluice {

// CV_8UC4 BGRA pixels when the file has transparency (an alpha channel or tRNS), else
// CV_8UC3 BGR; with `keep_grayscale`, a gray file without transparency is CV_8UC1.
DecodedPixels DecodePng(std::span<const std::uint8_t> bytes, bool keep_grayscale = false);

}  // namespace sluice

#endif  // SLUICE_STAGES_PNG_CODEC_H_
