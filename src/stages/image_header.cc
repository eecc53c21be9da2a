#include "src/stages/image_header.h"

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace sluice {
namespace {

using ByteSpan = std::span<const std::uint8_t>;

// Bounds-checked little/big-endian reads: every caller has checked `size()` first,
// but these stay safe (returning 0) if one ever forgets.
std::uint32_t Be16(ByteSpan b, std::size_t at) {
  if (at + 2 > b.size()) return 0;
  return (std::uint32_t{b[at]} << 8) | b[at + 1];
}
std::uint32_t Be32(ByteSpan b, std::size_t at) {
  if (at + 4 > b.size()) return 0;
  return (Be16(b, at) << 16) | Be16(b, at + 2);
}
std::uint32_t Le16(ByteSpan b, std::size_t at) {
  if (at + 2 > b.size()) return 0;
  return std::uint32_t{b[at]} | (std::uint32_t{b[at + 1]} << 8);
}
std::uint32_t Le24(ByteSpan b, std::size_t at) {
  if (at + 3 > b.size()) return 0;
  return Le16(b, at) | (std::uint32_t{b[at + 2]} << 16);
}
std::uint32_t Le32(ByteSpan b, std::size_t at) {
  if (at + 4 > b.size()) return 0;
  return Le16(b, at) | (Le16(b, at + 2) << 16);
}

bool StartsWith(ByteSpan b, std::size_t at, std::string_view magic) {
  return at + magic.size() <= b.size() &&
         std::memcmp(b.data() + at, magic.data(), magic.size()) == 0;
}

constexpr std::string_view kPngSignature("\x89PNG\r\n\x1a\n", 8);

// A header with both dimensions, or with none when either is not positive (the
// header then reads as malformed, as its contract says).
ImageHeader Sized(ImageFormat format, std::int64_t width, std::int64_t height) {
  ImageHeader header;
  header.format = format;
  header.dimensions_known = width > 0 && height > 0;
  if (header.dimensions_known) {
    header.width = width;
    header.height = height;
  }
  return header;
}

}  // namespace

std::string_view ImageFormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg:
      return "jpeg";
    case ImageFormat::kPng:
      return "png";
    case ImageFormat::kGif:
      return "gif";
    case ImageFormat::kWebp:
      return "webp";
    case ImageFormat::kBmp:
      return "bmp";
    case ImageFormat::kTiff:
      return "tiff";
    case ImageFormat::kUnknown:
      break;
  }
  return "";
}

ImageFormat SniffImageFormat(ByteSpan b) {
  if (StartsWith(b, 0, kPngSignature)) return ImageFormat::kPng;
  if (b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
    return ImageFormat::kJpeg;
  }
  if (StartsWith(b, 0, "GIF87a") || StartsWith(b, 0, "GIF89a")) return ImageFormat::kGif;
  if (StartsWith(b, 0, "RIFF") && StartsWith(b, 8, "WEBP")) return ImageFormat::kWebp;
  if (StartsWith(b, 0, "BM") && b.size() >= 26) return ImageFormat::kBmp;
  if (StartsWith(b, 0, std::string_view("II*\0", 4)) ||
      StartsWith(b, 0, std::string_view("MM\0*", 4))) {
    return ImageFormat::kTiff;
  }
  return ImageFormat::kUnknown;
}

std::optional<ImageHeader> ReadPngHeader(ByteSpan b) {
  // Signature (8), IHDR length (4) and type (4), width (4), height (4), bit depth (1),
  // color type (1): IHDR must be the first chunk.
  if (!StartsWith(b, 0, kPngSignature) || !StartsWith(b, 12, "IHDR") || b.size() < 26) {
    return std::nullopt;
  }
  // The PNG specification limits both dimensions to 2^31 - 1; larger ones are
  // malformed (and their product would overflow 64 bits in the caller's pixel cap).
  constexpr std::uint32_t kMaxPngDimension = 0x7FFFFFFF;
  const std::uint32_t width = Be32(b, 16);
  const std::uint32_t height = Be32(b, 20);
  ImageHeader header = width <= kMaxPngDimension && height <= kMaxPngDimension
                           ? Sized(ImageFormat::kPng, width, height)
                           : Sized(ImageFormat::kPng, 0, 0);
  const std::uint8_t color_type = b[25];
  header.has_alpha = color_type == 4 || color_type == 6;
  // A tRNS chunk (before IDAT) gives palette or gray/RGB images transparency. Walk
  // the chunk list, bounded by the bytes we have and a chunk count.
  std::size_t at = 8;
  for (int chunks = 0; chunks < 64 && at + 8 <= b.size(); ++chunks) {
    const std::uint64_t length = Be32(b, at);
    if (StartsWith(b, at + 4, "tRNS")) header.has_alpha = true;
    if (StartsWith(b, at + 4, "IDAT") || StartsWith(b, at + 4, "IEND")) break;
    at += 12 + length;  // length, type, data, CRC; 64-bit: cannot overflow
  }
  return header;
}

int ReadExifOrientation(ByteSpan app1) {
  if (!StartsWith(app1, 0, std::string_view("Exif\0\0", 6))) return 1;
  const ByteSpan tiff = app1.subspan(6);
  bool little;
  if (StartsWith(tiff, 0, "II")) {
    little = true;
  } else if (StartsWith(tiff, 0, "MM")) {
    little = false;
  } else {
    return 1;
  }
  auto u16 = [&](std::size_t at) { return little ? Le16(tiff, at) : Be16(tiff, at); };
  auto u32 = [&](std::size_t at) { return little ? Le32(tiff, at) : Be32(tiff, at); };
  if (u16(2) != 42) return 1;
  const std::uint64_t ifd = u32(4);
  if (ifd + 2 > tiff.size()) return 1;
  const std::uint32_t entries = u16(ifd);
  for (std::uint32_t i = 0; i < entries; ++i) {
    const std::uint64_t entry = ifd + 2 + 12ULL * i;
    if (entry + 12 > tiff.size()) return 1;
    if (u16(entry) == 0x0112) {  // Orientation, SHORT, value stored inline
      const std::uint32_t value = u16(entry + 8);
      return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
    }
  }
  return 1;
}

std::optional<ImageHeader> ReadJpegHeader(ByteSpan b) {
  if (b.size() < 4 || b[0] != 0xFF || b[1] != 0xD8) return std::nullopt;
  int orientation = 1;
  std::size_t at = 2;
  while (at + 4 <= b.size()) {
    if (b[at] != 0xFF) return std::nullopt;  // not at a marker: corrupt
    const std::uint8_t marker = b[at + 1];
    if (marker == 0xFF) {  // fill byte before a marker
      ++at;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // no length
      at += 2;
      continue;
    }
    if (marker == 0xD9 || marker == 0xDA) return std::nullopt;  // EOI/SOS before SOF
    const std::size_t length = Be16(b, at + 2);
    if (length < 2) return std::nullopt;
    const bool is_sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 &&
                        marker != 0xC8 && marker != 0xCC;
    if (is_sof) {
      // length (2), precision (1), height (2), width (2): need 9 bytes from `at`.
      if (at + 9 > b.size() || length < 7) return std::nullopt;
      ImageHeader header = Sized(ImageFormat::kJpeg, Be16(b, at + 7), Be16(b, at + 5));
      header.orientation = orientation;
      return header;
    }
    if (marker == 0xE1 && at + 2 + length <= b.size()) {
      const int found = ReadExifOrientation(b.subspan(at + 4, length - 2));
      if (found != 1) orientation = found;
    }
    at += 2 + length;
  }
  return std::nullopt;
}

std::optional<ImageHeader> ReadGifHeader(ByteSpan b) {
  if (!(StartsWith(b, 0, "GIF87a") || StartsWith(b, 0, "GIF89a")) || b.size() < 10) {
    return std::nullopt;
  }
  return Sized(ImageFormat::kGif, Le16(b, 6), Le16(b, 8));
}

std::optional<ImageHeader> ReadWebpHeader(ByteSpan b) {
  if (!StartsWith(b, 0, "RIFF") || !StartsWith(b, 8, "WEBP")) return std::nullopt;
  if (StartsWith(b, 12, "VP8 ")) {
    // Lossy: 3-byte frame tag, start code 9d 01 2a, then 14-bit width and height.
    if (b.size() < 30 || b[23] != 0x9D || b[24] != 0x01 || b[25] != 0x2A) {
      return std::nullopt;
    }
    return Sized(ImageFormat::kWebp, Le16(b, 26) & 0x3FFF, Le16(b, 28) & 0x3FFF);
  }
  if (StartsWith(b, 12, "VP8L")) {
    // Lossless: signature 0x2f, then width-1 (14 bits), height-1 (14), alpha (1).
    if (b.size() < 25 || b[20] != 0x2F) return std::nullopt;
    const std::uint32_t bits = Le32(b, 21);
    ImageHeader header =
        Sized(ImageFormat::kWebp, (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1);
    header.has_alpha = ((bits >> 28) & 1) != 0;
    return header;
  }
  if (StartsWith(b, 12, "VP8X")) {
    // Extended: flags (alpha = 0x10), 3 reserved, canvas width-1 and height-1 (24 each).
    if (b.size() < 30) return std::nullopt;
    ImageHeader header = Sized(ImageFormat::kWebp, std::int64_t{Le24(b, 24)} + 1,
                               std::int64_t{Le24(b, 27)} + 1);
    header.has_alpha = (b[20] & 0x10) != 0;
    return header;
  }
  return std::nullopt;
}

std::optional<ImageHeader> ReadBmpHeader(ByteSpan b) {
  if (!StartsWith(b, 0, "BM") || b.size() < 26) return std::nullopt;
  const std::uint32_t dib_size = Le32(b, 14);
  if (dib_size == 12) {  // BITMAPCOREHEADER: 16-bit unsigned dimensions
    return Sized(ImageFormat::kBmp, Le16(b, 18), Le16(b, 20));
  }
  // BITMAPINFOHEADER and later: signed 32-bit; a negative height means top-down.
  const auto width = static_cast<std::int32_t>(Le32(b, 18));
  const auto height = static_cast<std::int32_t>(Le32(b, 22));
  return Sized(ImageFormat::kBmp, width, std::llabs(std::int64_t{height}));
}

std::optional<ImageHeader> ReadImageHeader(ByteSpan b) {
  const ImageFormat format = SniffImageFormat(b);
  std::optional<ImageHeader> header;
  switch (format) {
    case ImageFormat::kPng:
      header = ReadPngHeader(b);
      break;
    case ImageFormat::kJpeg:
      header = ReadJpegHeader(b);
      break;
    case ImageFormat::kGif:
      header = ReadGifHeader(b);
      break;
    case ImageFormat::kWebp:
      header = ReadWebpHeader(b);
      break;
    case ImageFormat::kBmp:
      header = ReadBmpHeader(b);
      break;
    case ImageFormat::kTiff:
      break;
    case ImageFormat::kUnknown:
      return std::nullopt;
  }
  if (!header.has_value()) {
    header.emplace();
    header->format = format;
  }
  return header;
}

}  // namespace sluice
