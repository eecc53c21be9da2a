// The names of TIFF and EXIF tags, and how the exif field (src/stages/exif.h)
// prints each one's values.
//
// Three tables, as an EXIF block has three kinds of IFD: the main one (TIFF 6.0
// baseline and extension tags, the EXIF 2.3 tags, a few in wide use such as
// Windows' XP* tags), GPS (EXIF 2.3, 4.6.6) and Interoperability (4.6.7). The
// names are the TIFF / EXIF ones, spelled as the keys img2dataset writes (which
// come from the Python exifread library): "ExifOffset" for the Exif IFD pointer,
// "ExifImageWidth" for PixelXDimension, "ISOSpeedRatings", "CVAPattern", ...
//
// Thread-safe: the tables are constant.
#ifndef SLUICE_STAGES_EXIF_TAGS_H_
#define SLUICE_STAGES_EXIF_TAGS_H_

#include <cstdint>
#include <string_view>

namespace sluice {

enum class ExifTable : std::uint8_t { kMain, kGps, kInteroperability };

// How a tag's values are printed (src/stages/exif.cc says what each does).
enum class ExifTagFormat : std::uint8_t {
  kPlain,       // the values as Python prints them
  kEnumerated,  // codes with labels: the codes, each as Python's repr(), run together
  kCharacters,  // characters stored as numbers (ExifVersion "0230")
  kGpsIfd,      // the offset of the GPS IFD
  kInteropIfd,  // the offset of the Interoperability IFD
};

struct ExifTag {
  std::uint16_t id;
  std::string_view name;
  ExifTagFormat format;
};

// The tag `id` of `table`, or nullptr for a tag it does not name.
const ExifTag* FindExifTag(ExifTable table, std::uint16_t id);

}  // namespace sluice

#endif  // SLUICE_STAGES_EXIF_TAGS_H_
