// Fuzzes the exif field (src/stages/exif.h), which walks the TIFF structure of
// untrusted downloaded bytes wherever their offsets point.
//
// The input is a whole file. Checked, besides ASan/UBSan and libFuzzer's time and
// memory limits (which catch unbounded work):
//   - a result is a JSON object of string values, in ASCII (json.dumps' escapes),
//     its keys unique and of the form "<IFD name> <tag name>", its values without
//     leading or trailing Python whitespace (img2dataset strips them);
//   - the same bytes give the same result;
//   - a TIFF file that gives a result gives the same one when it is the EXIF block
//     of a JPEG (APP1), a PNG (eXIf) or a WebP (EXIF chunk) that ends with it: the
//     offsets count from the TIFF header and the bytes after it are the same.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "src/stages/exif.h"
#include "src/stages/python_text.h"
#include "tests/fuzz/fuzz_check.h"

namespace sluice {
namespace {

using Bytes = std::vector<std::uint8_t>;

bool StartsWithIfdName(const std::string& key) {
  for (const char* name :
       {"Image ", "Thumbnail ", "IFD ", "EXIF ", "GPS ", "Interoperability "}) {
    if (key.starts_with(name)) return true;
  }
  return false;
}

void CheckJson(const std::string& text) {
  for (const char c : text) SLUICE_FUZZ_CHECK(static_cast<unsigned char>(c) < 0x80);
  const nlohmann::ordered_json json = nlohmann::ordered_json::parse(text, nullptr, false);
  SLUICE_FUZZ_CHECK(json.is_object());
  std::set<std::string> keys;
  for (const auto& [key, value] : json.items()) {
    SLUICE_FUZZ_CHECK(keys.insert(key).second);
    SLUICE_FUZZ_CHECK(StartsWithIfdName(key));
    SLUICE_FUZZ_CHECK(value.is_string());
    const std::string& printed = value.get_ref<const std::string&>();
    SLUICE_FUZZ_CHECK(PythonStrip(printed).size() == printed.size());
  }
}

// `tiff` as the EXIF block of an image file that ends with it.
Bytes Wrapped(std::span<const std::uint8_t> tiff, int container) {
  Bytes out;
  switch (container) {
    case 0:  // JPEG: SOI, APP1 (its length does not matter to exifread)
      out = {0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x00, 'E', 'x', 'i', 'f', 0, 0};
      break;
    case 1:  // PNG: the signature, an eXIf chunk's length and type
      out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 0, 'e', 'X', 'I', 'f'};
      break;
    default:  // WebP: RIFF, VP8X with the EXIF flag, an EXIF chunk's header
      out = {'R', 'I', 'F', 'F', 0,   0,   0,   0,   'W', 'E', 'B', 'P', 'V',
             'P', '8', 'X', 10,  0,   0,   0,   8,   0,   0,   0,   0,   0,
             0,   0,   0,   0,   'E', 'X', 'I', 'F', 0,   0,   0,   0};
      break;
  }
  out.insert(out.end(), tiff.begin(), tiff.end());
  return out;
}

}  // namespace
}  // namespace sluice

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  const std::span<const std::uint8_t> bytes(data, size);
  const std::optional<std::string> exif = ExifJson(bytes);
  if (exif.has_value()) CheckJson(*exif);
  SLUICE_FUZZ_CHECK(ExifJson(bytes) == exif);

  const bool tiff = size >= 2 && ((data[0] == 'I' && data[1] == 'I') ||
                                  (data[0] == 'M' && data[1] == 'M'));
  if (tiff && exif.has_value()) {
    for (int container = 0; container < 3; ++container) {
      SLUICE_FUZZ_CHECK(ExifJson(Wrapped(bytes, container)) == exif);
    }
  }
  return 0;
}
