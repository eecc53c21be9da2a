#include "src/stages/exif.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "src/stages/exif_test_util.h"

namespace sluice {
namespace {

using testing::JfifSegment;
using testing::JpegWithExif;
using testing::PngWithExif;
using testing::TiffBuilder;
using testing::TiffField;
using testing::TiffIfd;
using testing::WebpWithExif;
using std::literals::string_view_literals::operator""sv;

constexpr std::uint16_t kMake = 0x010F;
constexpr std::uint16_t kOrientation = 0x0112;
constexpr std::uint16_t kExifOffset = 0x8769;
constexpr std::uint16_t kGpsInfo = 0x8825;
constexpr std::uint16_t kInteropOffset = 0xA005;

std::string Exif(const Bytes& file) {
  const std::optional<std::string> json = ExifJson(file);
  return json.has_value() ? *json : "<None>";
}

// The exif text of a TIFF made of `ifds`, in both byte orders (it must not
// depend on the order).
std::string ExifOfTiff(const std::vector<TiffIfd>& little,
                       const std::vector<TiffIfd>& big) {
  const std::string little_json = Exif(TiffBuilder(true).Build(little));
  EXPECT_EQ(little_json, Exif(TiffBuilder(false).Build(big)));
  return little_json;
}

// One IFD0 of the fields `make` gives for each byte order.
template <typename MakeFields>
std::string ExifOfFields(MakeFields make) {
  const TiffBuilder little(true), big(false);
  return ExifOfTiff({{make(little)}}, {{make(big)}});
}

TEST(ExifTest, FilesWithoutExifGiveAnEmptyObject) {
  EXPECT_EQ(Exif({}), "{}");
  EXPECT_EQ(Exif(Bytes{'<', 'h', 't', 'm', 'l', '>'}), "{}");
  EXPECT_EQ(Exif(Bytes{'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0}), "{}");
  EXPECT_EQ(Exif(Bytes{'B', 'M', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}), "{}");
  // A JPEG whose first segments hold no Exif APP1 (an XMP APP1, a comment).
  const Bytes jpeg = {0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 'h',  't',  't',  'p',
                      0xFF, 0xFE, 0x00, 0x04, 'h',  'i',  0xFF, 0xDB, 0x00, 0x43};
  EXPECT_EQ(Exif(jpeg), "{}");
  // A PNG without eXIf, a simple WebP, an extended WebP whose flags say no EXIF.
  Bytes png = PngWithExif({});
  png[40] = 'x';  // eXIf -> eXIx
  EXPECT_EQ(Exif(png), "{}");
  // An extended WebP whose VP8X chunk size's first byte lacks bit 3: exifread takes
  // that byte for the flags, and looks no further.
  Bytes webp = WebpWithExif(
      TiffBuilder(true).Build({{{TiffBuilder(true).Short(kOrientation, {6})}}}));
  webp[16] = 0x12;
  EXPECT_EQ(Exif(webp), "{}");
  EXPECT_EQ(
      Exif(Bytes{'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', ' '}),
      "{}");
  // An empty IFD0.
  EXPECT_EQ(Exif(TiffBuilder(false).Build({{}})), "{}");
}

TEST(ExifTest, EveryFieldTypeInBothByteOrders) {
  const std::string json = ExifOfFields([](const TiffBuilder& t) {
    return std::vector<TiffField>{
        t.Byte(0x1001, {7}),
        t.Ascii(kMake, "Canon\0"sv),
        t.Short(0x0100, {640}),
        t.Long(0x0101, {4000000000u}),
        t.Rational(0x011A, {{72, 1}}),
        t.SByte(0x1002, {-5}),
        t.Undefined(0x1003, "\x01\x02"),
        t.SShort(0x1004, {-300, 300}),
        t.SLong(0x1005, {-70000}),
        t.SRational(0x1006, {{-2, 6}}),
        t.Float(0x1007, {1.5f}),
        t.Double(0x1008, {0.1}),
        t.Ifd(0x1009, {26}),
    };
  });
  EXPECT_EQ(
      json,
      R"x({"Image Tag 0x1001": "7", "Image Make": "Canon", "Image ImageWidth": "640", )x"
      R"x("Image ImageLength": "4000000000", "Image XResolution": "72", )x"
      R"x("Image Tag 0x1002": "-5", "Image Tag 0x1003": "[1, 2]", )x"
      R"x("Image Tag 0x1004": "[-300, 300]", "Image Tag 0x1005": "-70000", )x"
      R"x("Image Tag 0x1006": "-1/3", "Image Tag 0x1007": "(1.5,)", )x"
      R"x("Image Tag 0x1008": "(0.1,)", "Image Tag 0x1009": "26"})x");
}

TEST(ExifTest, RationalsPrintAsPythonFractions) {
  const std::string json = ExifOfFields([](const TiffBuilder& t) {
    return std::vector<TiffField>{
        t.Rational(0x1001, {{10, 4}, {9, 3}, {0, 7}, {5, 0}, {0, 0}}),
        t.SRational(0x1002, {{3, -9}, {-4, -8}, {-7, 0}, {0, -2}}),
        t.Rational(0x1003, {{4294967295u, 5}}),
    };
  });
  EXPECT_EQ(json, R"x({"Image Tag 0x1001": "[5/2, 3, 0, 5/0, 0/0]", )x"
                  R"x("Image Tag 0x1002": "[-1/3, 1/2, -7/0, 0]", )x"
                  R"x("Image Tag 0x1003": "858993459"})x");
}

TEST(ExifTest, FloatsPrintAsPythonFloatTuples) {
  const std::string json = ExifOfFields([](const TiffBuilder& t) {
    return std::vector<TiffField>{
        t.Float(0x1001, {0.1f, -2.0f}),
        t.Double(0x1002, {1e-05, 0.0001, 1e16, 1234567890123456.0, -0.0, 5e-324,
                          std::numeric_limits<double>::infinity(), std::nan("")}),
    };
  });
  EXPECT_EQ(
      json,
      R"x({"Image Tag 0x1001": "[(0.10000000149011612,), (-2.0,)]", )x"
      R"x("Image Tag 0x1002": "[(1e-05,), (0.0001,), (1e+16,), (1234567890123456.0,), )x"
      R"x((-0.0,), (5e-324,), (inf,), (nan,)]"})x");
}

TEST(ExifTest, LongFieldsAreCutAfterTwentyValuesAndHugeOnesNotRead) {
  const TiffBuilder t(true);
  const auto shorts = [&t](std::uint16_t tag, std::uint32_t count) {
    Bytes data;
    for (std::uint32_t i = 0; i < count; ++i) t.Put(data, 2, i);
    return TiffBuilder::Raw(tag, 3, count, data);
  };
  const std::string json =
      Exif(t.Build({{{shorts(0x1001, 50), shorts(0x1002, 51), shorts(0x1003, 999),
                      shorts(0x1004, 1000), shorts(0x1005, 0)}}}));
  std::string fifty = "[0";
  for (int i = 1; i < 50; ++i) fifty += ", " + std::to_string(i);
  fifty += "]";
  const std::string cut =
      "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, "
      "19, ... ]";
  EXPECT_EQ(json, R"x({"Image Tag 0x1001": ")x" + fifty +
                      R"x(", "Image Tag 0x1002": ")x" + cut +
                      R"x(", "Image Tag 0x1003": ")x" + cut +
                      R"x(", "Image Tag 0x1004": "[]", "Image Tag 0x1005": "[]"})x");
}

TEST(ExifTest, AsciiIsCutAtNulAndKeptAsBytesWhenNotUtf8) {
  const std::string json = ExifOfFields([](const TiffBuilder& t) {
    return std::vector<TiffField>{
        t.Ascii(0x010E, "  caf\xC3\xA9 \xF0\x9F\x98\x80\t\n"),
        t.Ascii(kMake, "ab\0cd"sv),
        t.Ascii(0x0110, ""),
        t.Ascii(0x0131, "Caf\xE9 it's \\ \x01"),
        t.Ascii(0x013B, std::string(60, '\xFF')),
        t.Ascii(0x013C, "q\"'"),
    };
  });
  EXPECT_EQ(
      json,
      R"x({"Image ImageDescription": "caf\u00e9 \ud83d\ude00", "Image Make": "ab", )x"
      R"x("Image Model": "", "Image Software": "b\"Caf\\xe9 it's \\\\ \\x01\"", )x"
      R"x("Image Artist": "b'\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff)x"
      R"x(\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff, ... ]", )x"
      R"x("Image HostComputer": "q\"'"})x");
}

TEST(ExifTest, CharacterTagsAndEnumeratedTagsAsExifreadPrintsUnlabelledCodes) {
  const std::string json = ExifOfFields([](const TiffBuilder& t) {
    return std::vector<TiffField>{
        t.Undefined(0x9000, "0230"),                   // ExifVersion
        t.Undefined(0xA000, "\0\0\0\0"sv),             // FlashPixVersion, all zeros
        t.Short(0x011D, {32, 'p', 'a', 'g', 'e', 0}),  // PageName
        t.Byte(0x9C9D, {1, 2}),                        // XPAuthor: nothing printable
        t.Short(kOrientation, {6}),
        t.Undefined(0x9101, "\x01\x02\x03\x00"sv),  // ComponentsConfiguration
        t.Ascii(0x9209, "AB"),                      // Flash, as text
    };
  });
  EXPECT_EQ(
      json,
      R"x({"Image ExifVersion": "0230", "Image FlashPixVersion": "", )x"
      R"x("Image PageName": "page", "Image XPAuthor": "12", "Image Orientation": "6", )x"
      R"x("Image ComponentsConfiguration": "1230", "Image Flash": "'A''B'"})x");
}

TEST(ExifTest, SubIfdsAreDumpedWhereExifreadDumpsThem) {
  const TiffBuilder t(false);
  // IFD0 -> IFD1; the Exif IFD (2) holds the Interoperability pointer (to 3); the
  // GPS IFD (4) is pointed to by IFD0.
  std::vector<TiffIfd> ifds(5);
  ifds[0].fields = {t.Ascii(kMake, "M"), t.Long(kGpsInfo, {0}), t.Long(kExifOffset, {0}),
                    t.Short(kOrientation, {1})};
  ifds[1].fields = {t.Long(0x0201, {1234})};
  ifds[2].fields = {t.Rational(0x829A, {{1, 125}}), t.Long(kInteropOffset, {0})};
  ifds[3].fields = {t.Ascii(0x0001, "R98"), t.Undefined(0x0002, "0100")};
  ifds[4].fields = {t.Byte(0x0000, {2, 2, 0, 0}), t.Ascii(0x0001, "N")};
  ifds[0].fields[1] = t.Long(kGpsInfo, {TiffBuilder::IfdOffset(ifds, 4)});
  ifds[0].fields[2] = t.Long(kExifOffset, {TiffBuilder::IfdOffset(ifds, 2)});
  ifds[0].next = TiffBuilder::IfdOffset(ifds, 1);
  ifds[2].fields[1] = t.Long(kInteropOffset, {TiffBuilder::IfdOffset(ifds, 3)});
  EXPECT_EQ(
      Exif(t.Build(ifds)),
      R"x({"Image Make": "M", "GPS GPSVersionID": "[2, 2, 0, 0]", )x"
      R"x("GPS GPSLatitudeRef": "N", "Image GPSInfo": "140", "Image ExifOffset": "80", )x"
      R"x("Image Orientation": "1", "Thumbnail JPEGInterchangeFormat": "1234", )x"
      R"x("EXIF ExposureTime": "1/125", "Interoperability InteroperabilityIndex": "R98", )x"
      R"x("Interoperability InteroperabilityVersion": "[48, 49, 48, 48]", )x"
      R"x("EXIF InteroperabilityOffset": "110"})x");
}

TEST(ExifTest, TheIfdChainIsNamedInOrderAndEndsAtALoop) {
  const TiffBuilder t(true);
  std::vector<TiffIfd> ifds(4);
  for (int i = 0; i < 4; ++i)
    ifds[i].fields = {t.Short(0x0100, {static_cast<std::uint16_t>(i)})};
  ifds[0].next = TiffBuilder::IfdOffset(ifds, 1);
  ifds[1].next = TiffBuilder::IfdOffset(ifds, 2);
  ifds[2].next = TiffBuilder::IfdOffset(ifds, 3);
  ifds[3].next = TiffBuilder::IfdOffset(ifds, 1);  // back: the chain ends
  EXPECT_EQ(
      Exif(t.Build(ifds)),
      R"x({"Image ImageWidth": "0", "Thumbnail ImageWidth": "1", "IFD 2 ImageWidth": "2", )x"
      R"x("IFD 3 ImageWidth": "3"})x");
  ifds[1].next = TiffBuilder::IfdOffset(ifds, 1);  // to itself: ends too
  EXPECT_EQ(Exif(t.Build(ifds)),
            R"x({"Image ImageWidth": "0", "Thumbnail ImageWidth": "1"})x");
}

TEST(ExifTest, SkippedTagsAndTypesAndKeysSetTwice) {
  const TiffBuilder t(true);
  std::vector<TiffIfd> ifds(2);
  ifds[0].fields = {
      t.Ascii(kMake, "first"),
      t.Undefined(0x927C, "maker note"),  // MakerNote, UserComment, XMP: skipped
      t.Undefined(0x9286, "ASCII\0\0\0comment"sv),
      t.Byte(0x02BC, {'<', 'x'}),
      TiffBuilder::Raw(0x0110, 0, 1, {1}),  // field types 0 and 14 up: skipped
      TiffBuilder::Raw(0x0110, 14, 1, {1}),
      t.Short(0xABCD, {1}),
      t.Long(kGpsInfo, {0}),
      t.Ascii(kMake, "again"),  // keeps its first place
  };
  ifds[1].fields = {t.Short(0x0005, {9})};
  ifds[0].fields[7] = t.Long(kGpsInfo, {TiffBuilder::IfdOffset(ifds, 1)});
  // The GPS IFD is also IFD1 of the chain, and is dumped twice under two names.
  ifds[0].next = TiffBuilder::IfdOffset(ifds, 1);
  EXPECT_EQ(
      Exif(t.Build(ifds)),
      R"x({"Image Make": "again", "Image Tag 0xABCD": "1", "GPS GPSAltitudeRef": "9", )x"
      R"x("Image GPSInfo": "122", "Thumbnail Tag 0x0005": "9"})x");
}

TEST(ExifTest, ReadsPastTheEndGiveZerosAndCutReadsRaise) {
  const TiffBuilder t(true);
  // A value wholly after the end of the file reads as zeros.
  EXPECT_EQ(Exif(t.Build({{{TiffBuilder::Raw(0x1001, 4, 3, {}, 0x10000)}}})),
            R"x({"Image Tag 0x1001": "[0, 0, 0]"})x");
  EXPECT_EQ(Exif(t.Build({{{TiffBuilder::Raw(0x1001, 2, 9, {}, 0x10000)}}})),
            R"x({"Image Tag 0x1001": ""})x");
  // Text cut by the end is kept as far as it goes; a float cut by it is -1.
  Bytes text = t.Build({{{TiffBuilder::Raw(0x1001, 2, 100, {}, 26)}}});
  text.insert(text.end(), {'a', 'b', 'c'});
  EXPECT_EQ(Exif(text), R"x({"Image Tag 0x1001": "abc"})x");
  Bytes doubles = t.Build({{{TiffBuilder::Raw(0x1001, 12, 2, {}, 26)}}});
  doubles.insert(doubles.end(), 12, 0);
  EXPECT_EQ(Exif(doubles), R"x({"Image Tag 0x1001": "[(0.0,), -1]"})x");
  // An integer cut by the end raises: img2dataset writes None.
  Bytes longs = t.Build({{{TiffBuilder::Raw(0x1001, 4, 2, {}, 26)}}});
  longs.insert(longs.end(), 6, 0);
  EXPECT_EQ(Exif(longs), "<None>");
  // So does an IFD whose entries, or whose next-IFD pointer, the end cuts.
  const Bytes whole = t.Build({{{t.Short(0x0100, {1}), t.Short(0x0101, {2})}}});
  for (std::size_t size : {9, 15, 19, 29, 31, 36}) {
    EXPECT_EQ(Exif(Bytes(whole.begin(), whole.begin() + size)), "<None>") << size;
  }
  // Cut at an entry's start: the entries from there read as zeros, then the next
  // pointer too.
  EXPECT_EQ(Exif(Bytes(whole.begin(), whole.begin() + 22)),
            R"x({"Image ImageWidth": "1"})x");
  EXPECT_EQ(Exif(Bytes(whole.begin(), whole.begin() + 10)), "{}");
}

TEST(ExifTest, OffsetsReachPastTheSegmentIntoTheRestOfTheFile) {
  const TiffBuilder t(true);
  // Make's 6 bytes are said to be at offset 200, past the APP1 segment: exifread
  // reads them from the file, here the DQT after the segment.
  Bytes tiff = t.Build({{{TiffBuilder::Raw(kMake, 2, 6, {}, 0)}}});
  const Bytes probe = JpegWithExif(tiff);
  const std::size_t tiff_start = 2 + 10;
  const std::size_t dqt = tiff_start + tiff.size();
  tiff = t.Build({{{TiffBuilder::Raw(kMake, 2, 6, {},
                                     static_cast<std::uint32_t>(dqt - tiff_start))}}});
  ASSERT_EQ(probe.size(), JpegWithExif(tiff).size());
  EXPECT_EQ(Exif(JpegWithExif(tiff)), R"x({"Image Make": "b'\\xff\\xdb'"})x");
}

TEST(ExifTest, TheContainersExifreadReads) {
  const TiffBuilder t(false);
  const Bytes tiff = t.Build({{{t.Short(kOrientation, {3})}}});
  const std::string expected = R"x({"Image Orientation": "3"})x";
  EXPECT_EQ(Exif(tiff), expected);
  EXPECT_EQ(Exif(JpegWithExif(tiff)), expected);
  EXPECT_EQ(Exif(JpegWithExif(tiff, JfifSegment())), expected);
  // An APP2 before the APP1 is skipped by its length...
  Bytes app2 = {0xFF, 0xE2, 0x00, 0x10};
  app2.insert(app2.end(), 14, 0);
  EXPECT_EQ(Exif(JpegWithExif(tiff, app2)), expected);
  // ... but exifread looks only 4000 bytes past the JFIF segments.
  app2 = {0xFF, 0xE2, 0x10, 0x00};
  app2.insert(app2.end(), 0x1000 - 2, 0);
  EXPECT_EQ(Exif(JpegWithExif(tiff, app2)), "{}");
  EXPECT_EQ(Exif(PngWithExif(tiff)), expected);
  EXPECT_EQ(Exif(WebpWithExif(tiff)), expected);
}

TEST(ExifTest, ByteOrderIsTheHeadersFirstByte) {
  const Bytes tiff =
      TiffBuilder(false).Build({{{TiffBuilder(false).Short(kOrientation, {8})}}});
  Bytes odd = tiff;
  odd[0] = 'd';  // read as big-endian, as exifread does
  EXPECT_EQ(Exif(JpegWithExif(odd)), R"x({"Image Orientation": "8"})x");
  odd[0] = 'X';
  EXPECT_EQ(Exif(JpegWithExif(odd)), "<None>");
  // Nothing after "Exif\0\0": no byte order to read.
  EXPECT_EQ(Exif(Bytes{0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x08, 'E', 'x', 'i', 'f', 0, 0}),
            "<None>");
}

TEST(ExifTest, PointersThatAreNotOffsets) {
  const TiffBuilder t(true);
  // An Exif pointer with no value raises; one that is text is not followed.
  EXPECT_EQ(Exif(t.Build({{{TiffBuilder::Raw(kExifOffset, 4, 0, {})}}})), "<None>");
  EXPECT_EQ(Exif(t.Build({{{t.Ascii(kExifOffset, "x")}}})),
            R"x({"Image ExifOffset": "x"})x");
  // A GPS pointer with no value, or a rational one, is not followed; a rational
  // with a zero denominator raises.
  EXPECT_EQ(Exif(t.Build({{{TiffBuilder::Raw(kGpsInfo, 4, 0, {})}}})),
            R"x({"Image GPSInfo": "[]"})x");
  EXPECT_EQ(Exif(t.Build({{{t.Rational(kGpsInfo, {{8, 1}})}}})),
            R"x({"Image GPSInfo": "8"})x");
  EXPECT_EQ(Exif(t.Build({{{t.Rational(kGpsInfo, {{8, 0}})}}})), "<None>");
  // A negative offset seeks before the file: raises.
  EXPECT_EQ(Exif(t.Build({{{t.SLong(kGpsInfo, {-4})}}})), "<None>");
}

TEST(ExifTest, JsonEscapesAsPythonsJsonDumps) {
  const std::string json = ExifOfFields([](const TiffBuilder& t) {
    return std::vector<TiffField>{t.Ascii(kMake, "\"q\" \\ \x7f \x1b \b\f\r end")};
  });
  EXPECT_EQ(json, R"x({"Image Make": "\"q\" \\ \u007f \u001b \b\f\r end"})x");
}

TEST(ExifTest, WorkIsBoundedOnHostileInput) {
  const TiffBuilder t(true);
  // 65535 GPS pointers to IFD0 itself, each dump reading 65535 entries: exifread
  // would read 4e9 entries.
  TiffIfd ifd;
  ifd.fields.assign(65535, t.Long(kGpsInfo, {8}));
  EXPECT_EQ(Exif(t.Build({ifd})), "<None>");
  // 999 values per field, in many fields pointing at the same data.
  Bytes data(8000, 7);
  TiffIfd wide;
  wide.fields.assign(20000, TiffBuilder::Raw(0x1001, 4, 999, {}, 8 + 6 + 12 * 20000));
  Bytes file = t.Build({wide});
  file.insert(file.end(), data.begin(), data.end());
  EXPECT_EQ(Exif(file), "<None>");
}

}  // namespace
}  // namespace sluice
