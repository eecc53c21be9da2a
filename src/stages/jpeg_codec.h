// JPEG with libjpeg-turbo directly: decoding to 8-bit BGR at scale 1/8, 2/8, 4/8
// or 1, and encoding from BGR.
//
// Why not cv::imdecode: it decodes through an extra conversion pass (a full-size
// decode costs 1.8x libjpeg's own time on the benchmark corpus) and applies the
// EXIF orientation itself. Here libjpeg writes BGR straight into the rows of the
// result. Scaling inside the inverse DCT is a proper low-pass filter, so a reduced
// decode is as clean as an area resize of the full image, and several times cheaper.
// libjpeg-turbo can scale by any M/8, but only 1/8, 2/8, 4/8 and 8/8 have SIMD
// inverse DCTs: 3/8 costs more than 4/8 and 5/8 to 7/8 more than a full decode
// (measured: 7/8 at 2x the time of 8/8), so those are never used.
//
// Encoding: the same bytes as cv::imencode(".jpg") with IMWRITE_JPEG_QUALITY (both
// are libjpeg with its defaults and 4:2:0 chroma), without OpenCV's row-by-row
// colour conversion: libjpeg reads BGR itself. About 25% less time for a 256 px
// image.
//
// Hostile input: libjpeg reports fatal errors through a longjmp, caught here and
// turned into a message; warnings (a truncated file, whose missing rows libjpeg
// fills with gray) are not errors, as with OpenCV. Progressive files are limited to
// kMaxScans scans: a crafted file with thousands of tiny scans would otherwise cost
// minutes of CPU (libjpeg-turbo's own advice for untrusted input).
//
// Pure functions, thread-safe.
#ifndef SLUICE_STAGES_JPEG_CODEC_H_
#define SLUICE_STAGES_JPEG_CODEC_H_

#include <cstdint>
#include <opencv2/core.hpp>
#include <span>
#include <string>
#include <vector>

namespace sluice {

// The smallest M of 1, 2, 4 such that a side of `side` pixels decoded at M/8, which
// libjpeg rounds up, is still >= `target`; else 8 (full size), also when target <= 0
// or the side is not larger than the target.
int JpegScaleEighths(std::int64_t side, std::int64_t target);

struct JpegDecodeResult {
  // CV_8UC3 BGR (CV_8UC1 for a grayscale file decoded with keep_grayscale), as
  // stored (no EXIF rotation); empty on failure.
  cv::Mat pixels;
  std::string error;  // why pixels is empty
  // The file is CMYK or YCCK, which libjpeg cannot turn into BGR: decode it some
  // other way (error says so too).
  bool unsupported_color = false;
};

inline constexpr int kMaxScans = 500;

struct JpegEncodeResult {
  std::vector<std::uint8_t> bytes;  // empty on failure
  std::string error;
};

// Encodes CV_8UC3 BGR `pixels` at `quality` (1..100, clamped).
JpegEncodeResult EncodeJpeg(const cv::Mat& pixels, int quality);

// Decodes `bytes` at scale `scale_eighths`/8 (1..8, clamped; any M works, see above).
// `keep_grayscale`: a grayscale (one-component) file comes out as one channel.
JpegDecodeResult DecodeJpeg(std::span<const std::uint8_t> bytes, int scale_eighths,
                            bool keep_grayscale = false);

}  // namespace sluice

#endif  // SLUICE_STAGES_JPEG_CODEC_H_
