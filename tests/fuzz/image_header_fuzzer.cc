// Fuzzes the image header parsers (src/stages/image_header.h), which read untrusted
// downloaded bytes before anything is decoded.
//
// The input is the start of an image file. Checked, besides ASan/UBSan:
//   - ReadImageHeader returns a header exactly when SniffImageFormat knows the
//     format, of that format, and equal to the format's own parser when that one
//     reads it;
//   - known dimensions are positive, within what the format allows, and their
//     product fits in 64 bits; unknown ones are 0; alpha only for PNG and WebP; the
//     orientation is 1..8, and other than 1 only for JPEG;
//   - dimensions read from the first half of the bytes stay the same with all of
//     them (the parsers never read past what they need for the frame header).
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>

#include "src/stages/image_header.h"
#include "tests/fuzz/fuzz_check.h"

namespace sluice {
namespace {

using ByteSpan = std::span<const std::uint8_t>;

// The largest dimension each format can store.
std::int64_t MaxDimension(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng:
      return 0x7FFFFFFF;  // the PNG specification's limit
    case ImageFormat::kJpeg:
    case ImageFormat::kGif:
      return 0xFFFF;
    case ImageFormat::kWebp:
      return 1 << 24;
    case ImageFormat::kBmp:
      return 1LL << 31;
    case ImageFormat::kTiff:
    case ImageFormat::kUnknown:
      break;
  }
  return 0;
}

bool SameHeader(const ImageHeader& a, const ImageHeader& b) {
  return a.format == b.format && a.dimensions_known == b.dimensions_known &&
         a.width == b.width && a.height == b.height && a.has_alpha == b.has_alpha &&
         a.orientation == b.orientation;
}

void CheckHeader(const ImageHeader& header) {
  SLUICE_FUZZ_CHECK(header.format != ImageFormat::kUnknown);
  SLUICE_FUZZ_CHECK(!ImageFormatName(header.format).empty());
  if (header.dimensions_known) {
    SLUICE_FUZZ_CHECK(header.width > 0 && header.height > 0);
    SLUICE_FUZZ_CHECK(header.width <= MaxDimension(header.format));
    SLUICE_FUZZ_CHECK(header.height <= MaxDimension(header.format));
    // The decode stage compares width * height with its pixel cap.
    SLUICE_FUZZ_CHECK(header.width <=
                      std::numeric_limits<std::int64_t>::max() / header.height);
  } else {
    SLUICE_FUZZ_CHECK(header.width == 0 && header.height == 0);
  }
  if (header.has_alpha) {
    SLUICE_FUZZ_CHECK(header.format == ImageFormat::kPng ||
                      header.format == ImageFormat::kWebp);
  }
  SLUICE_FUZZ_CHECK(header.orientation >= 1 && header.orientation <= 8);
  if (header.orientation != 1) SLUICE_FUZZ_CHECK(header.format == ImageFormat::kJpeg);
}

// The format's own parser.
std::optional<ImageHeader> ReadAs(ImageFormat format, ByteSpan bytes) {
  switch (format) {
    case ImageFormat::kPng:
      return ReadPngHeader(bytes);
    case ImageFormat::kJpeg:
      return ReadJpegHeader(bytes);
    case ImageFormat::kGif:
      return ReadGifHeader(bytes);
    case ImageFormat::kWebp:
      return ReadWebpHeader(bytes);
    case ImageFormat::kBmp:
      return ReadBmpHeader(bytes);
    case ImageFormat::kTiff:
    case ImageFormat::kUnknown:
      break;
  }
  return std::nullopt;
}

}  // namespace
}  // namespace sluice

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  const ByteSpan bytes(data, size);

  const ImageFormat format = SniffImageFormat(bytes);
  const std::optional<ImageHeader> header = ReadImageHeader(bytes);
  SLUICE_FUZZ_CHECK(header.has_value() == (format != ImageFormat::kUnknown));
  if (header.has_value()) {
    SLUICE_FUZZ_CHECK(header->format == format);
    CheckHeader(*header);
    const std::optional<ImageHeader> own = ReadAs(format, bytes);
    if (own.has_value()) SLUICE_FUZZ_CHECK(SameHeader(*own, *header));
  }

  // Every parser on every input: each checks its own magic.
  for (const ImageFormat other :
       {ImageFormat::kPng, ImageFormat::kJpeg, ImageFormat::kGif, ImageFormat::kWebp,
        ImageFormat::kBmp}) {
    const std::optional<ImageHeader> parsed = ReadAs(other, bytes);
    if (parsed.has_value()) {
      SLUICE_FUZZ_CHECK(parsed->format == other);
      CheckHeader(*parsed);
    }
  }
  const int orientation = ReadExifOrientation(bytes);
  SLUICE_FUZZ_CHECK(orientation >= 1 && orientation <= 8);

  const std::optional<ImageHeader> half = ReadImageHeader(bytes.first(size / 2));
  if (half.has_value() && half->dimensions_known) {
    SLUICE_FUZZ_CHECK(header.has_value() && header->format == half->format);
    SLUICE_FUZZ_CHECK(header->dimensions_known);
    SLUICE_FUZZ_CHECK(header->width == half->width && header->height == half->height);
  }
  return 0;
}
