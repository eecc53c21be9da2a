#include "src/stages/exif_container.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>

namespace sluice {
namespace {

using FileBytes = std::span<const std::uint8_t>;

// Whether file[pos, pos + text.size()) holds `text`, looking no further than
// `limit` bytes into the file.
bool HasAt(FileBytes file, std::int64_t limit, std::int64_t pos, std::string_view text) {
  limit = std::min<std::int64_t>(limit, static_cast<std::int64_t>(file.size()));
  if (pos < 0 || pos + static_cast<std::int64_t>(text.size()) > limit) return false;
  return std::memcmp(file.data() + pos, text.data(), text.size()) == 0;
}

constexpr ExifBlock kNoExif{ExifBlock::Outcome::kNone, 0};
constexpr ExifBlock kRaises{ExifBlock::Outcome::kRaise, 0};

ExifBlock Found(std::int64_t tiff_offset) {
  return {ExifBlock::Outcome::kFound, tiff_offset};
}

// exifread's JPEG walk (see the header), which reads a segment's length wherever
// it expects a marker.
ExifBlock FindInJpeg(FileBytes file) {
  const auto size = static_cast<std::int64_t>(file.size());
  // `data` holds 12 bytes at first, later FF 00 and the 10 bytes at `position`.
  std::array<std::uint8_t, 12> data{};
  std::int64_t data_size = std::min<std::int64_t>(12, size);
  std::copy_n(file.begin(), data_size, data.begin());
  std::int64_t position = data_size;
  std::int64_t base = 2;
  while (true) {
    if (data_size < 3) return kRaises;  // data[2] out of range
    if (data[2] != 0xFF || data_size < 10) break;
    const std::string_view code(reinterpret_cast<const char*>(data.data()) + 6, 4);
    if (code != "JFIF" && code != "JFXX" && code != "OLYM" && code != "Phot") break;
    const std::int64_t length = data[4] * 256 + data[5];
    // read(length - 8): to the end of the file when that is negative.
    position = length >= 8 ? std::min(position + length - 8, size) : size;
    const std::int64_t got = std::min<std::int64_t>(10, size - position);
    data[0] = 0xFF;
    data[1] = 0x00;
    std::copy_n(file.begin() + position, got, data.begin() + 2);
    data_size = 2 + got;
    position += got;
    base = base > 2 ? base + length + 2 : length + 4;
  }

  const std::int64_t window = std::min(size, base + 4000);
  while (true) {
    const bool marker = base + 2 <= window && file[base] == 0xFF;
    const int kind = marker ? file[base + 1] : -1;
    if (kind == 0xDB) break;
    // APP1, APP0, APP2, APP14, SOI and APP12 print their length before using it: out
    // of range, that raises; for other bytes it means no EXIF.
    const bool named = kind == 0xE1 || kind == 0xE0 || kind == 0xE2 || kind == 0xEE ||
                       kind == 0xD8 || kind == 0xEC;
    if (base + 4 > window) return named ? kRaises : kNoExif;
    if (kind == 0xE1 && HasAt(file, window, base + 4, "Exif")) {
      base -= 2;
      break;
    }
    base += file[base + 2] * 256 + file[base + 3] + 2;
  }
  if (base + 2 >= window) return kRaises;
  if (file[base + 2] == 0xFF &&
      (HasAt(file, window, base + 6, "Exif") || HasAt(file, window, base + 6, "Ducky") ||
       HasAt(file, window, base + 6, "Adobe"))) {
    return Found(base + 12);
  }
  return kNoExif;
}

// The first eXIf chunk, walking chunk lengths (CRCs unchecked) until IEND or the end.
ExifBlock FindInPng(FileBytes file) {
  const auto size = static_cast<std::int64_t>(file.size());
  std::int64_t position = 8;
  while (true) {
    const std::int64_t got = std::clamp<std::int64_t>(size - position, 0, 8);
    const FileBytes header = got > 0 ? file.subspan(position, got) : FileBytes();
    position += got;
    const FileBytes type = got > 4 ? header.subspan(4) : FileBytes();
    // exifread prints each chunk type decoded as ASCII: a byte over 0x7F raises.
    if (std::any_of(type.begin(), type.end(), [](std::uint8_t b) { return b > 0x7F; })) {
      return kRaises;
    }
    const std::string_view name(reinterpret_cast<const char*>(type.data()), type.size());
    if (name.empty() || name == "IEND") return kNoExif;
    if (name == "eXIf") return Found(position);
    const std::int64_t length = (std::int64_t{header[0]} << 24) | (header[1] << 16) |
                                (header[2] << 8) | header[3];
    position += length + 4;
  }
}

// The EXIF chunk of an extended WebP. file[16] is the VP8X chunk size's first
// byte, which exifread reads as the flags.
ExifBlock FindInWebp(FileBytes file) {
  const auto size = static_cast<std::int64_t>(file.size());
  if (!HasAt(file, size, 12, "VP8X")) return kNoExif;
  if (size < 17) return kRaises;  // out of range
  if ((file[16] & 0x08) == 0) return kNoExif;
  std::int64_t position = 30;
  while (position + 8 <= size) {
    if (HasAt(file, size, position, "EXIF")) return Found(position + 8);
    const std::int64_t length = file[position + 4] | (file[position + 5] << 8) |
                                (file[position + 6] << 16) |
                                (std::int64_t{file[position + 7]} << 24);
    position += 8 + length;
  }
  return kNoExif;
}

}  // namespace

// The formats in exifread's order of tests.
ExifBlock FindExifBlock(std::span<const std::uint8_t> file) {
  const auto size = static_cast<std::int64_t>(file.size());
  if (HasAt(file, size, 0, "II") || HasAt(file, size, 0, "MM")) return Found(0);
  if (HasAt(file, 12, 4, "ftypheic")) return kRaises;  // HEIC: not read here
  if (HasAt(file, 12, 0, "RIFF") && HasAt(file, 12, 8, "WEBP")) return FindInWebp(file);
  if (HasAt(file, 12, 0, "\xFF\xD8")) return FindInJpeg(file);
  if (HasAt(file, 12, 0, "\x89PNG\r\n\x1A\n")) return FindInPng(file);
  return kNoExif;
}

}  // namespace sluice
