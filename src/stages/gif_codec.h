// GIF decoding with giflib: the first frame, as a browser shows it before animating.
//
// OpenCV 4.6 has no GIF reader, and GIFs (animated ones included) are a few percent of
// the images on the web. The first image of the file is drawn onto the logical
// screen (the GIF's canvas) at its offset, with its own colour table or the global
// one; the Graphics Control Extension's transparent index, the canvas outside the
// frame and colour indexes past the table come back transparent (alpha 0), for the
// caller to composite. Interlaced frames are put back in row order. Later frames are
// not read.
//
// Hostile input: a frame larger than `max_pixels` is refused before its pixels are
// decoded (LZW data can expand a small file into a huge frame; the canvas itself is
// checked by the caller from the header); a file that ends or breaks before the
// first frame is complete is an error with giflib's reason.
//
// Pure function, thread-safe.
#ifndef SLUICE_STAGES_GIF_CODEC_H_
#define SLUICE_STAGES_GIF_CODEC_H_

#include <cstdint>
#include <opencv2/core.hpp>
#include <span>

#include "src/stages/image.h"

namespace sluice {

// CV_8UC4 BGRA pixels, the canvas's size.
DecodedPixels DecodeGif(std::span<const std::uint8_t> bytes, std::int64_t max_pixels);

}  // namespace sluice

#endif  // SLUICE_STAGES_GIF_CODEC_H_
