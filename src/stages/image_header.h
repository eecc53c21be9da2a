// Image header sniffing: the format and the pixel dimensions of encoded image bytes,
// read from the first few hundred bytes without decoding anything.
//
// The decode stage refuses images whose declared pixel count is over a cap BEFORE
// handing the bytes to OpenCV, so that a small file declaring 100,000 x 100,000
// pixels (a decompression bomb) costs microseconds and no memory. OpenCV 4.6 has no
// header-only API, hence these small parsers, one per format:
//   PNG   signature + IHDR (color type -> alpha; a tRNS chunk also means alpha)
//   JPEG  markers up to the first SOFn frame header; APP1 Exif orientation
//   GIF   logical screen descriptor
//   WebP  RIFF + VP8 / VP8L / VP8X chunk headers (alpha from VP8L / VP8X flags)
//   BMP   BITMAPINFOHEADER / BITMAPCOREHEADER
//   TIFF  recognised by its magic only: dimensions live in an IFD anywhere in the
//         file, so `dimensions_known` is false and the caller checks after decoding.
//
// Every parser treats its input as hostile: it reads only inside the span, never
// trusts a length field, and returns nullopt / partial results instead of failing
// loudly. Pure functions, thread-safe.
#ifndef SLUICE_STAGES_IMAGE_HEADER_H_
#define SLUICE_STAGES_IMAGE_HEADER_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace sluice {

enum class ImageFormat : std::uint8_t { kUnknown, kJpeg, kPng, kGif, kWebp, kBmp, kTiff };

// "jpeg", "png", "gif", "webp", "bmp", "tiff"; "" for kUnknown.
std::string_view ImageFormatName(ImageFormat format);

struct ImageHeader {
  ImageFormat format = ImageFormat::kUnknown;
  // False when the format is known but its header is truncated or malformed, or
  // (TIFF) not parsed; width and height are then 0.
  bool dimensions_known = false;
  // As stored in the file, before any EXIF rotation.
  std::int64_t width = 0;
  std::int64_t height = 0;
  // The image may have an alpha channel (PNG color type 4/6 or tRNS, WebP alpha).
  bool has_alpha = false;
  // EXIF orientation tag (1..8) of a JPEG; 1 when absent or unreadable. 5..8 swap
  // width and height once applied.
  int orientation = 1;
};

// The format from the magic bytes alone; kUnknown when no supported format matches.
ImageFormat SniffImageFormat(std::span<const std::uint8_t> bytes);

// The format and, where the header is readable, the dimensions. Returns nullopt only
// when the bytes match no supported format's magic.
std::optional<ImageHeader> ReadImageHeader(std::span<const std::uint8_t> bytes);

// Per-format parsers, exposed for tests. Each returns nullopt when the bytes are not
// a readable header of that format.
std::optional<ImageHeader> ReadPngHeader(std::span<const std::uint8_t> bytes);
std::optional<ImageHeader> ReadJpegHeader(std::span<const std::uint8_t> bytes);
std::optional<ImageHeader> ReadGifHeader(std::span<const std::uint8_t> bytes);
std::optional<ImageHeader> ReadWebpHeader(std::span<const std::uint8_t> bytes);
std::optional<ImageHeader> ReadBmpHeader(std::span<const std::uint8_t> bytes);

// The orientation (1..8) in a JPEG APP1 Exif payload (starting at "Exif\0\0"), or 1.
int ReadExifOrientation(std::span<const std::uint8_t> app1);

}  // namespace sluice

#endif  // SLUICE_STAGES_IMAGE_HEADER_H_
