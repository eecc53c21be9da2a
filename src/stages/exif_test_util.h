// Test helpers for the exif field: TIFF structures built field by field in either
// byte order, and the containers exifread finds them in (JPEG APP1, PNG eXIf,
// WebP EXIF). Test-only.
#ifndef SLUICE_STAGES_EXIF_TEST_UTIL_H_
#define SLUICE_STAGES_EXIF_TEST_UTIL_H_

#include <bit>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/record.h"

namespace sluice::testing {

// One IFD entry: its values as they are stored (in the TIFF's byte order), inline
// when they fit in 4 bytes, else in the data area after the IFDs or at `offset`.
struct TiffField {
  std::uint16_t tag = 0;
  std::uint16_t type = 0;
  std::uint32_t count = 0;
  Bytes data;
  std::optional<std::uint32_t> offset;  // where larger values are said to be
};

struct TiffIfd {
  std::vector<TiffField> fields;
  std::uint32_t next = 0;  // the next IFD's offset
};

class TiffBuilder {
 public:
  explicit TiffBuilder(bool little_endian) : little_endian_(little_endian) {}

  // The header, then the IFDs one after the other from offset 8, then the values
  // that do not fit in their entries, each at an even offset.
  Bytes Build(const std::vector<TiffIfd>& ifds) const {
    Bytes out = little_endian_ ? Bytes{'I', 'I', 42, 0} : Bytes{'M', 'M', 0, 42};
    Put(out, 4, 8);
    Bytes data;
    std::uint32_t data_start = IfdOffset(ifds, ifds.size());
    for (const TiffIfd& ifd : ifds) {
      Put(out, 2, ifd.fields.size());
      for (const TiffField& field : ifd.fields) {
        Put(out, 2, field.tag);
        Put(out, 2, field.type);
        Put(out, 4, field.count);
        if (field.data.size() <= 4 && !field.offset.has_value()) {
          Bytes inline_value = field.data;
          inline_value.resize(4, 0);
          out.insert(out.end(), inline_value.begin(), inline_value.end());
        } else if (field.offset.has_value()) {
          Put(out, 4, *field.offset);
        } else {
          Put(out, 4, data_start + data.size());
          data.insert(data.end(), field.data.begin(), field.data.end());
          if (data.size() % 2 != 0) data.push_back(0);
        }
      }
      Put(out, 4, ifd.next);
    }
    out.insert(out.end(), data.begin(), data.end());
    return out;
  }

  // Where IFD `index` of `ifds` is (or the data area, for index ifds.size()).
  static std::uint32_t IfdOffset(const std::vector<TiffIfd>& ifds, std::size_t index) {
    std::uint32_t offset = 8;
    for (std::size_t i = 0; i < index; ++i) {
      offset += static_cast<std::uint32_t>(6 + 12 * ifds[i].fields.size());
    }
    return offset;
  }

  TiffField Byte(std::uint16_t tag, std::initializer_list<std::uint8_t> values) const {
    return Field(tag, 1, 1, values);
  }
  // ASCII: `text` as it is stored (the NUL included when the test wants one).
  TiffField Ascii(std::uint16_t tag, std::string_view text) const {
    return {tag, 2, static_cast<std::uint32_t>(text.size()),
            Bytes(text.begin(), text.end()), std::nullopt};
  }
  TiffField Short(std::uint16_t tag, std::initializer_list<std::uint16_t> values) const {
    return Field(tag, 3, 2, values);
  }
  TiffField Long(std::uint16_t tag, std::initializer_list<std::uint32_t> values) const {
    return Field(tag, 4, 4, values);
  }
  TiffField Rational(
      std::uint16_t tag,
      std::initializer_list<std::pair<std::uint32_t, std::uint32_t>> values) const {
    TiffField field{tag, 5, static_cast<std::uint32_t>(values.size()), {}, std::nullopt};
    for (const auto& [numerator, denominator] : values) {
      Put(field.data, 4, numerator);
      Put(field.data, 4, denominator);
    }
    return field;
  }
  TiffField SByte(std::uint16_t tag, std::initializer_list<std::int8_t> values) const {
    return Field(tag, 6, 1, values);
  }
  TiffField Undefined(std::uint16_t tag, std::string_view bytes) const {
    return {tag, 7, static_cast<std::uint32_t>(bytes.size()),
            Bytes(bytes.begin(), bytes.end()), std::nullopt};
  }
  TiffField SShort(std::uint16_t tag, std::initializer_list<std::int16_t> values) const {
    return Field(tag, 8, 2, values);
  }
  TiffField SLong(std::uint16_t tag, std::initializer_list<std::int32_t> values) const {
    return Field(tag, 9, 4, values);
  }
  TiffField SRational(
      std::uint16_t tag,
      std::initializer_list<std::pair<std::int32_t, std::int32_t>> values) const {
    TiffField field{tag, 10, static_cast<std::uint32_t>(values.size()), {}, std::nullopt};
    for (const auto& [numerator, denominator] : values) {
      Put(field.data, 4, static_cast<std::uint32_t>(numerator));
      Put(field.data, 4, static_cast<std::uint32_t>(denominator));
    }
    return field;
  }
  TiffField Float(std::uint16_t tag, std::initializer_list<float> values) const {
    TiffField field{tag, 11, static_cast<std::uint32_t>(values.size()), {}, std::nullopt};
    for (const float value : values)
      Put(field.data, 4, std::bit_cast<std::uint32_t>(value));
    return field;
  }
  TiffField Double(std::uint16_t tag, std::initializer_list<double> values) const {
    TiffField field{tag, 12, static_cast<std::uint32_t>(values.size()), {}, std::nullopt};
    for (const double value : values)
      Put(field.data, 8, std::bit_cast<std::uint64_t>(value));
    return field;
  }
  TiffField Ifd(std::uint16_t tag, std::initializer_list<std::uint32_t> values) const {
    return Field(tag, 13, 4, values);
  }
  // A field of any type and count, its stored bytes given.
  static TiffField Raw(std::uint16_t tag, std::uint16_t type, std::uint32_t count,
                       Bytes data, std::optional<std::uint32_t> offset = std::nullopt) {
    return {tag, type, count, std::move(data), offset};
  }

  // `value`'s low `size` bytes in the builder's byte order, appended to `out`.
  void Put(Bytes& out, int size, std::uint64_t value) const {
    for (int i = 0; i < size; ++i) {
      const int shift = 8 * (little_endian_ ? i : size - 1 - i);
      out.push_back(static_cast<std::uint8_t>(value >> shift));
    }
  }

 private:
  template <typename T>
  TiffField Field(std::uint16_t tag, std::uint16_t type, int size,
                  std::initializer_list<T> values) const {
    TiffField field{
        tag, type, static_cast<std::uint32_t>(values.size()), {}, std::nullopt};
    for (const T value : values) {
      Put(field.data, size, static_cast<std::uint64_t>(static_cast<std::int64_t>(value)));
    }
    return field;
  }

  bool little_endian_;
};

// A minimal JPEG around `tiff`: SOI, an APP1 "Exif\0\0" segment, a DQT, EOI (no
// image: exifread reads no pixel data). `before` goes between SOI and the APP1.
inline Bytes JpegWithExif(const Bytes& tiff, const Bytes& before = {}) {
  Bytes out = {0xFF, 0xD8};
  out.insert(out.end(), before.begin(), before.end());
  const std::size_t length = tiff.size() + 8;
  out.insert(out.end(), {0xFF, 0xE1, static_cast<std::uint8_t>(length >> 8),
                         static_cast<std::uint8_t>(length), 'E', 'x', 'i', 'f', 0, 0});
  out.insert(out.end(), tiff.begin(), tiff.end());
  out.insert(out.end(), {0xFF, 0xDB, 0x00, 0x43, 0x00});
  out.insert(out.end(), 64, 1);
  out.insert(out.end(), {0xFF, 0xD9});
  return out;
}

// A JFIF APP0 segment, which JPEG encoders write first.
inline Bytes JfifSegment() {
  return {0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0};
}

// A PNG signature and IHDR, then an eXIf chunk holding `tiff`, then IEND. CRCs are
// zero: exifread does not check them.
inline Bytes PngWithExif(const Bytes& tiff) {
  Bytes out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  const auto chunk = [&out](std::string_view type, const Bytes& data) {
    const auto size = static_cast<std::uint32_t>(data.size());
    out.insert(
        out.end(),
        {static_cast<std::uint8_t>(size >> 24), static_cast<std::uint8_t>(size >> 16),
         static_cast<std::uint8_t>(size >> 8), static_cast<std::uint8_t>(size)});
    out.insert(out.end(), type.begin(), type.end());
    out.insert(out.end(), data.begin(), data.end());
    out.insert(out.end(), 4, 0);
  };
  chunk("IHDR", {0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0});
  chunk("eXIf", tiff);
  chunk("IEND", {});
  return out;
}

// An extended WebP: VP8X (its flags saying there is EXIF), a VP8L chunk, then an
// EXIF chunk holding `tiff`.
inline Bytes WebpWithExif(const Bytes& tiff) {
  const auto put32 = [](Bytes& out, std::size_t value) {
    for (int i = 0; i < 4; ++i)
      out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
  };
  Bytes body = {'W', 'E', 'B', 'P', 'V', 'P', '8', 'X'};
  put32(body, 10);
  body.insert(body.end(), {0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  body.insert(body.end(), {'V', 'P', '8', 'L'});
  put32(body, 6);
  body.insert(body.end(), {0x2F, 0, 0, 0, 0, 0});
  body.insert(body.end(), {'E', 'X', 'I', 'F'});
  put32(body, tiff.size());
  body.insert(body.end(), tiff.begin(), tiff.end());
  Bytes out = {'R', 'I', 'F', 'F'};
  put32(out, body.size());
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

}  // namespace sluice::testing

#endif  // SLUICE_STAGES_EXIF_TEST_UTIL_H_
