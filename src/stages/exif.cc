#include "src/stages/exif.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "src/stages/exif_container.h"
#include "src/stages/exif_tags.h"
#include "src/stages/python_text.h"

namespace sluice {
namespace {

using FileBytes = std::span<const std::uint8_t>;

// The work limits (see the header).
constexpr std::int64_t kMaxEntries = 1 << 17;      // IFD entries, chained IFDs included
constexpr std::int64_t kMaxValues = 1 << 22;       // numeric values
constexpr std::int64_t kMaxTextBytes = 32 << 20;   // ASCII read plus text printed
constexpr std::int64_t kMaxValuesPerField = 1000;  // exifread reads none from here on

// The tags details=False skips in every IFD: XMP, MakerNote and UserComment.
bool IsSkipped(std::int64_t tag) {
  return tag == 0x02BC || tag == 0x927C || tag == 0x9286;
}

// TIFF field types 1..13 and the size of one value of each (0: no such type).
constexpr std::array<int, 14> kTypeSize = {0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4};
constexpr std::int64_t kAscii = 2;
bool IsSigned(std::int64_t type) {
  return type == 6 || type == 8 || type == 9 || type == 10;
}
bool IsRational(std::int64_t type) { return type == 5 || type == 10; }
bool IsFloat(std::int64_t type) { return type == 11 || type == 12; }

// --- Values and how exifread prints them -------------------------------------------

// One value of a numeric field, as exifread holds it: an int, a Fraction (kept
// unreduced with a zero denominator) or a float in a 1-tuple. A float cut by the
// end of the file is the int -1.
struct Number {
  enum class Kind : std::uint8_t { kInteger, kRatio, kFloat };
  Kind kind = Kind::kInteger;
  std::int64_t numerator = 0;  // the int, or the Fraction's numerator
  std::int64_t denominator = 1;
  double real = 0;
};

// A field's values: an ASCII field's bytes up to the first NUL (kText when they
// are UTF-8, else kBytes), or numbers.
struct FieldValues {
  enum class Kind : std::uint8_t { kText, kBytes, kNumbers };
  Kind kind = Kind::kNumbers;
  std::string text;
  std::vector<Number> numbers;
};

// repr() (which is str() too) of a value.
std::string Repr(const Number& number) {
  switch (number.kind) {
    case Number::Kind::kInteger:
      return std::to_string(number.numerator);
    case Number::Kind::kRatio: {
      std::int64_t numerator = number.numerator;
      std::int64_t denominator = number.denominator;
      if (denominator != 0) {
        const std::int64_t divisor = std::gcd(numerator, denominator);
        numerator /= divisor;
        denominator /= divisor;
        if (denominator < 0) {
          numerator = -numerator;
          denominator = -denominator;
        }
        if (denominator == 1) return std::to_string(numerator);
      }
      return std::to_string(numerator) + "/" + std::to_string(denominator);
    }
    case Number::Kind::kFloat:
      return "(" + PythonFloatRepr(number.real) + ",)";
  }
  return {};
}

// str() of a list of the first `count` numbers, or of a slice of them: "[1, 2, 3]".
std::string ListRepr(const std::vector<Number>& numbers, std::size_t count) {
  std::string out = "[";
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0) out += ", ";
    out += Repr(numbers[i]);
  }
  return out + "]";
}

// exifread's printable form of a field of `count` values.
std::string Printable(const FieldValues& values, std::int64_t count) {
  // Fields over 50 values longer than 20: str(values[0:20])[0:-1] + ', ... ]'.
  constexpr std::size_t kShown = 20;
  switch (values.kind) {
    case FieldValues::Kind::kText:
      return values.text;
    case FieldValues::Kind::kBytes:
      if (count > 50 && values.text.size() > kShown) {
        std::string shown =
            PythonBytesRepr(std::string_view(values.text).substr(0, kShown));
        shown.pop_back();
        return shown + ", ... ]";
      }
      return PythonBytesRepr(values.text);
    case FieldValues::Kind::kNumbers:
      if (count == 1) return Repr(values.numbers.front());
      if (count > 50 && values.numbers.size() > kShown) {
        std::string shown = ListRepr(values.numbers, kShown);
        shown.pop_back();
        return shown + ", ... ]";
      }
      return ListRepr(values.numbers, values.numbers.size());
  }
  return {};
}

// An enumerated tag: exifread looks each value up in the tag's labels and writes
// repr(value) when it has none; the results run together. Here every value is
// written that way. Text is looked up character by character, bytes byte by byte.
std::string EnumeratedPrintable(const FieldValues& values) {
  std::string out;
  switch (values.kind) {
    case FieldValues::Kind::kText:
      for (const char32_t c : DecodeUtf8(values.text)) out += PythonCharRepr(c);
      break;
    case FieldValues::Kind::kBytes:
      for (const char c : values.text)
        out += std::to_string(static_cast<std::uint8_t>(c));
      break;
    case FieldValues::Kind::kNumbers:
      for (const Number& number : values.numbers) out += Repr(number);
      break;
  }
  return out;
}

std::string_view StripSpacesAndNuls(std::string_view text) {
  const std::size_t begin = text.find_first_not_of(std::string_view(" \0", 2));
  if (begin == std::string_view::npos) return {};
  const std::size_t end = text.find_last_not_of(std::string_view(" \0", 2));
  return text.substr(begin, end - begin + 1);
}

// exifread's make_string(), for tags that are characters stored as numbers
// (ExifVersion 48 50 51 48 is "0230"): the values from 32 to 255 as characters;
// with none, the values' str() run together ("" when that is all zeros); then
// spaces and NULs stripped at both ends. Text is kept as it is (make_string keeps
// no character of a str and then falls back to the str itself).
std::string CharactersPrintable(const FieldValues& values) {
  std::string chars;
  switch (values.kind) {
    case FieldValues::Kind::kText:
      return std::string(StripSpacesAndNuls(values.text));
    case FieldValues::Kind::kBytes:
      for (const char c : values.text) {
        const auto byte = static_cast<std::uint8_t>(c);
        if (byte >= 32) AppendUtf8(byte, chars);
      }
      break;
    case FieldValues::Kind::kNumbers:
      for (const Number& number : values.numbers) {
        if (number.kind == Number::Kind::kInteger && number.numerator >= 32 &&
            number.numerator < 256) {
          AppendUtf8(static_cast<char32_t>(number.numerator), chars);
        }
      }
      if (chars.empty()) {
        for (const Number& number : values.numbers) chars += Repr(number);
        if (!chars.empty() && chars.find_first_not_of('0') == std::string::npos)
          return {};
      }
      break;
  }
  return std::string(StripSpacesAndNuls(chars));
}

// What a pointer tag's first value is as an IFD offset in exifread: it seeks to
// TIFF start + value, which takes an int (a byte of bytes too), raises a TypeError
// that the IFD dump catches for a str, tuple or Fraction, and raises
// ZeroDivisionError while adding a Fraction with a zero denominator.
struct IfdPointer {
  enum class Kind : std::uint8_t { kNoValue, kOffset, kNotAnInteger, kZeroDivision };
  Kind kind = Kind::kNoValue;
  std::int64_t offset = 0;
};

IfdPointer FirstValueAsIfd(const FieldValues& values) {
  using Kind = IfdPointer::Kind;
  switch (values.kind) {
    case FieldValues::Kind::kText:
      return {values.text.empty() ? Kind::kNoValue : Kind::kNotAnInteger, 0};
    case FieldValues::Kind::kBytes:
      if (values.text.empty()) return {Kind::kNoValue, 0};
      return {Kind::kOffset, static_cast<std::uint8_t>(values.text.front())};
    case FieldValues::Kind::kNumbers:
      break;
  }
  if (values.numbers.empty()) return {Kind::kNoValue, 0};
  const Number& first = values.numbers.front();
  switch (first.kind) {
    case Number::Kind::kInteger:
      return {Kind::kOffset, first.numerator};
    case Number::Kind::kRatio:
      return {first.denominator == 0 ? Kind::kZeroDivision : Kind::kNotAnInteger, 0};
    case Number::Kind::kFloat:
      break;
  }
  return {Kind::kNotAnInteger, 0};
}

std::string HexTagName(std::int64_t tag) {
  constexpr char kHexDigits[] = "0123456789ABCDEF";
  std::string name = "Tag 0x";
  for (int shift = 12; shift >= 0; shift -= 4) name += kHexDigits[(tag >> shift) & 0xF];
  return name;
}

// --- The IFD walk ---------------------------------------------------------------

// exifread's ExifHeader with details=False, over the TIFF structure at `start` in
// `file`. Every reading function returns false where exifread raises (or a work
// limit is reached); the walk stops there.
class ExifWalk {
 public:
  ExifWalk(FileBytes file, std::int64_t start, bool little_endian)
      : file_(file),
        size_(static_cast<std::int64_t>(file.size())),
        start_(start),
        little_endian_(little_endian) {}

  // Reads every IFD exifread reads, in its order.
  bool Run() {
    std::vector<std::int64_t> chain;
    if (!ListIfds(chain)) return false;
    for (std::size_t i = 0; i < chain.size(); ++i) {
      const std::string name = i == 0   ? std::string("Image")
                               : i == 1 ? std::string("Thumbnail")
                                        : "IFD " + std::to_string(i);
      if (!DumpIfd(chain[i], name, ExifTable::kMain)) return false;
    }
    if (!exif_pointer_.has_value()) return true;
    switch (exif_pointer_->kind) {
      case IfdPointer::Kind::kOffset:
        return DumpIfd(exif_pointer_->offset, "EXIF", ExifTable::kMain);
      case IfdPointer::Kind::kNotAnInteger:
        return true;
      case IfdPointer::Kind::kNoValue:  // values[0] of an empty list: IndexError
      case IfdPointer::Kind::kZeroDivision:
        return false;
    }
    return false;
  }

  // json.dumps of the tags, each printable form str.strip()-ed.
  std::string Json() const {
    std::string out = "{";
    for (const auto& [key, printable] : tags_) {
      if (out.size() > 1) out += ", ";
      AppendJsonString(key, out);
      out += ": ";
      AppendJsonString(PythonStrip(printable), out);
    }
    return out + "}";
  }

 private:
  // exifread's s2n(): the `size`-byte integer at `offset` from the TIFF start. 0
  // when it starts at or after the end of the file; raises when cut by the end, or
  // at a negative position (a signed pointer).
  bool ReadInteger(std::int64_t offset, int size, bool is_signed,
                   std::int64_t& value) const {
    const std::int64_t position = start_ + offset;
    if (position < 0) return false;
    if (position >= size_) {
      value = 0;
      return true;
    }
    if (position + size > size_) return false;
    std::uint64_t bits = 0;
    for (int i = 0; i < size; ++i) {
      const std::uint64_t byte = file_[position + i];
      bits |= little_endian_ ? byte << (8 * i) : byte << (8 * (size - 1 - i));
    }
    if (is_signed && size < 8 && (bits >> (8 * size - 1)) != 0) {
      bits |= ~std::uint64_t{0} << (8 * size);  // sign-extend
    }
    value = static_cast<std::int64_t>(bits);
    return true;
  }

  // A FLOAT or DOUBLE: read whole, or -1 when the file has fewer bytes there
  // (exifread catches that struct.error).
  bool ReadFloat(std::int64_t offset, int size, Number& number) const {
    const std::int64_t position = start_ + offset;
    if (position < 0) return false;
    if (position >= size_ || position + size > size_) {
      number = Number{Number::Kind::kInteger, -1, 1, 0};
      return true;
    }
    std::int64_t bits = 0;
    if (!ReadInteger(offset, size, false, bits)) return false;
    number.kind = Number::Kind::kFloat;
    number.real =
        size == 4
            ? static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(bits)))
            : std::bit_cast<double>(bits);
    return true;
  }

  // exifread's list_ifd(): IFD0 and the IFDs its next-IFD pointers chain to. A
  // pointer to its own IFD ends the chain, and so does one to an IFD seen before.
  bool ListIfds(std::vector<std::int64_t>& chain) {
    std::int64_t ifd = 0;
    if (!ReadInteger(4, 4, false, ifd)) return false;
    std::unordered_set<std::int64_t> seen;
    while (ifd != 0 && seen.insert(ifd).second) {
      if (!Spend(entries_left_, 1)) return false;
      chain.push_back(ifd);
      std::int64_t entries = 0, next = 0;
      if (!ReadInteger(ifd, 2, false, entries)) return false;
      if (!ReadInteger(ifd + 2 + 12 * entries, 4, false, next)) return false;
      ifd = next == ifd ? 0 : next;
    }
    return true;
  }

  bool DumpIfd(std::int64_t ifd, std::string_view ifd_name, ExifTable table) {
    std::int64_t entries = 0;
    if (!ReadInteger(ifd, 2, false, entries)) return false;
    for (std::int64_t i = 0; i < entries; ++i) {
      const std::int64_t entry = ifd + 2 + 12 * i;
      // Entries from the end of the file on read as zeros: type 0, which is skipped.
      if (start_ + entry >= size_) break;
      if (!Spend(entries_left_, 1)) return false;
      std::int64_t tag = 0;
      if (!ReadInteger(entry, 2, false, tag)) return false;
      if (IsSkipped(tag)) continue;
      if (!ReadEntry(entry, tag, ifd_name, table)) return false;
    }
    return true;
  }

  bool ReadEntry(std::int64_t entry, std::int64_t tag, std::string_view ifd_name,
                 ExifTable table) {
    std::int64_t type = 0, count = 0;
    if (!ReadInteger(entry + 2, 2, false, type)) return false;
    if (type <= 0 || type >= static_cast<std::int64_t>(kTypeSize.size())) return true;
    if (!ReadInteger(entry + 4, 4, false, count)) return false;
    const int value_size = kTypeSize[type];
    // Values of up to 4 bytes are in the entry; larger ones where it points.
    std::int64_t offset = entry + 8;
    if (count * value_size > 4 && !ReadInteger(entry + 8, 4, false, offset)) return false;

    FieldValues values;
    if (!(type == kAscii ? ReadText(offset, count, values)
                         : ReadNumbers(type, count, offset, values))) {
      return false;
    }
    const ExifTag* known = FindExifTag(table, static_cast<std::uint16_t>(tag));
    std::string printable = Printable(values, count);
    switch (known == nullptr ? ExifTagFormat::kPlain : known->format) {
      case ExifTagFormat::kPlain:
        break;
      case ExifTagFormat::kEnumerated:
        printable = EnumeratedPrintable(values);
        break;
      case ExifTagFormat::kCharacters:
        printable = CharactersPrintable(values);
        break;
      case ExifTagFormat::kGpsIfd:
        if (!DumpSubIfd(values, "GPS", ExifTable::kGps)) return false;
        break;
      case ExifTagFormat::kInteropIfd:
        if (!DumpSubIfd(values, "Interoperability", ExifTable::kInteroperability)) {
          return false;
        }
        break;
    }
    std::string key(ifd_name);
    key += ' ';
    key += known == nullptr ? HexTagName(tag) : std::string(known->name);
    if (key == "Image ExifOffset") exif_pointer_ = FirstValueAsIfd(values);
    return Store(std::move(key), std::move(printable));
  }

  // An ASCII field: `count` bytes (fewer at the end of the file), cut at the first
  // NUL.
  bool ReadText(std::int64_t offset, std::int64_t count, FieldValues& values) {
    values.kind = FieldValues::Kind::kText;
    if (count == 0) return true;
    const std::int64_t position = start_ + offset;
    if (position < 0) return false;
    const std::int64_t begin = std::min(position, size_);
    const std::int64_t end = std::min(position + count, size_);
    if (begin == end) return true;
    const auto* first = file_.data() + begin;
    const auto* nul = static_cast<const std::uint8_t*>(
        std::memchr(first, 0, static_cast<std::size_t>(end - begin)));
    const std::int64_t length = nul == nullptr ? end - begin : nul - first;
    if (!Spend(text_left_, length)) return false;
    values.text.assign(reinterpret_cast<const char*>(first),
                       static_cast<std::size_t>(length));
    if (!IsStrictUtf8(values.text)) values.kind = FieldValues::Kind::kBytes;
    return true;
  }

  bool ReadNumbers(std::int64_t type, std::int64_t count, std::int64_t offset,
                   FieldValues& values) {
    values.kind = FieldValues::Kind::kNumbers;
    if (count >= kMaxValuesPerField) return true;
    if (!Spend(values_left_, count)) return false;
    const int size = kTypeSize[type];
    values.numbers.resize(static_cast<std::size_t>(count));
    for (Number& number : values.numbers) {
      if (IsRational(type)) {
        number.kind = Number::Kind::kRatio;
        if (!ReadInteger(offset, 4, IsSigned(type), number.numerator) ||
            !ReadInteger(offset + 4, 4, IsSigned(type), number.denominator)) {
          return false;
        }
      } else if (IsFloat(type)) {
        if (!ReadFloat(offset, size, number)) return false;
      } else if (!ReadInteger(offset, size, IsSigned(type), number.numerator)) {
        return false;
      }
      offset += size;
    }
    return true;
  }

  // A GPSInfo or InteroperabilityOffset tag: the IFD it points to, dumped before the
  // tag itself is stored. An IndexError (no value) or a TypeError (not an int) is
  // caught here by exifread; a ZeroDivisionError is not.
  bool DumpSubIfd(const FieldValues& values, std::string_view name, ExifTable table) {
    const IfdPointer pointer = FirstValueAsIfd(values);
    switch (pointer.kind) {
      case IfdPointer::Kind::kOffset:
        return DumpIfd(pointer.offset, name, table);
      case IfdPointer::Kind::kNoValue:
      case IfdPointer::Kind::kNotAnInteger:
        return true;
      case IfdPointer::Kind::kZeroDivision:
        return false;
    }
    return false;
  }

  // Sets the tag as a Python dict does: a key set again keeps its first place.
  bool Store(std::string key, std::string printable) {
    if (!Spend(text_left_, static_cast<std::int64_t>(printable.size()))) return false;
    const auto [it, inserted] = index_.try_emplace(key, tags_.size());
    if (inserted) {
      tags_.emplace_back(std::move(key), std::move(printable));
    } else {
      tags_[it->second].second = std::move(printable);
    }
    return true;
  }

  static bool Spend(std::int64_t& left, std::int64_t amount) {
    if (amount > left) return false;
    left -= amount;
    return true;
  }

  const FileBytes file_;
  const std::int64_t size_;
  const std::int64_t start_;  // of the TIFF header in file_
  const bool little_endian_;
  std::int64_t entries_left_ = kMaxEntries;
  std::int64_t values_left_ = kMaxValues;
  std::int64_t text_left_ = kMaxTextBytes;
  std::vector<std::pair<std::string, std::string>> tags_;  // in first-set order
  std::unordered_map<std::string, std::size_t> index_;     // key -> place in tags_
  std::optional<IfdPointer> exif_pointer_;                 // "Image ExifOffset"'s
};

}  // namespace

std::optional<std::string> ExifJson(std::span<const std::uint8_t> file) {
  const ExifBlock block = FindExifBlock(file);
  if (block.outcome == ExifBlock::Outcome::kNone) return "{}";
  if (block.outcome == ExifBlock::Outcome::kRaise) return std::nullopt;
  if (block.tiff_offset >= static_cast<std::int64_t>(file.size())) return std::nullopt;
  // The byte order is the header's first byte: 'I' is little-endian; 'M', and the
  // 0x01 and 'd' exifread also accepts, big-endian; anything else raises.
  const std::uint8_t order = file[block.tiff_offset];
  if (order != 'I' && order != 'M' && order != 0x01 && order != 'd') return std::nullopt;
  ExifWalk walk(file, block.tiff_offset, order == 'I');
  if (!walk.Run()) return std::nullopt;
  return walk.Json();
}

}  // namespace sluice
