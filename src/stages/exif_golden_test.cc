// The exif text of real image files against what img2dataset writes for them:
// tests/fixtures/exif holds the files and, as NAME.exif, the text exifread gave
// (tests/fixtures/exif/make_fixtures.py made both; "None" where exifread raised).
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "sluice/record.h"
#include "src/stages/exif.h"

namespace sluice {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A tag exifread prints with a label and sluice with its code (src/stages/exif.h).
struct Code {
  std::string key;
  std::string value;  // what sluice writes
};

struct Fixture {
  std::string name;
  std::vector<Code> codes;  // the golden's values that are labels
};

// The golden text with each labelled tag's value replaced by its code. Each key
// must be there once, its value different from the code (a label).
std::string WithCodes(std::string golden, const Fixture& fixture) {
  for (const Code& code : fixture.codes) {
    const std::string start = "\"" + code.key + "\": \"";
    const std::size_t at = golden.find(start);
    if (at == std::string::npos || golden.find(start, at + 1) != std::string::npos) {
      ADD_FAILURE() << fixture.name << ": no single " << code.key << " in the golden";
      continue;
    }
    const std::size_t value_start = at + start.size();
    const std::size_t value_end = golden.find('"', value_start);  // labels hold no quote
    EXPECT_NE(golden.substr(value_start, value_end - value_start), code.value)
        << fixture.name << ": " << code.key << " is no label";
    golden.replace(value_start, value_end - value_start, code.value);
  }
  return golden;
}

TEST(ExifGoldenTest, SameTextAsImg2DatasetExceptLabelledCodes) {
  const std::vector<Fixture> fixtures = {
      {"camera.jpg",
       {{"Image Orientation", "6"},
        {"Image ResolutionUnit", "2"},
        {"Image YCbCrPositioning", "2"},
        {"Thumbnail Compression", "6"},
        {"Thumbnail ResolutionUnit", "2"},
        {"EXIF ExposureProgram", "2"},
        {"EXIF SensitivityType", "2"},
        {"EXIF ComponentsConfiguration", "1230"},
        {"EXIF MeteringMode", "5"},
        {"EXIF Flash", "16"},
        {"EXIF ColorSpace", "1"},
        {"EXIF ExposureMode", "0"},
        {"EXIF WhiteBalance", "0"},
        {"EXIF SceneCaptureType", "0"}}},
      {"gps_motorola.jpg", {{"Image Orientation", "1"}}},
      {"plain.jpg", {}},
      {"icc_first.jpg", {}},
      {"text.png", {}},
      {"extended.webp", {{"Image Orientation", "8"}}},
      {"exif_last.webp", {}},
      {"plain.webp", {}},
      {"scan.tiff",
       {{"Image Compression", "1"},
        {"Image ResolutionUnit", "2"},
        {"Thumbnail Compression", "1"},
        {"Thumbnail ResolutionUnit", "2"},
        {"IFD 2 Compression", "1"},
        {"IFD 2 ResolutionUnit", "2"}}},
      {"odd.jpg", {}},
      {"truncated.jpg", {}},
  };
  const std::string dir = std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/exif/";
  for (const Fixture& fixture : fixtures) {
    const std::string file = ReadFile(dir + fixture.name);
    const std::string golden = ReadFile(dir + fixture.name + ".exif");
    ASSERT_FALSE(file.empty()) << fixture.name;
    ASSERT_FALSE(golden.empty()) << fixture.name;
    const std::optional<std::string> exif = ExifJson(Bytes(file.begin(), file.end()));
    if (golden == "None") {
      EXPECT_FALSE(exif.has_value()) << fixture.name << ": " << exif.value_or("");
    } else {
      ASSERT_TRUE(exif.has_value()) << fixture.name;
      EXPECT_EQ(*exif, WithCodes(golden, fixture)) << fixture.name;
    }
  }
}

}  // namespace
}  // namespace sluice
