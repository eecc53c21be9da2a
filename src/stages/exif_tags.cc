#include "src/stages/exif_tags.h"

#include <algorithm>
#include <array>
#include <span>

namespace sluice {
namespace {

using F = ExifTagFormat;

// Each table in increasing id order (checked below), for a binary search.
constexpr ExifTag kMainTags[] = {
    // TIFF 6.0.
    {0x00FE, "SubfileType", F::kEnumerated},  // NewSubfileType
    {0x00FF, "OldSubfileType", F::kEnumerated},
    {0x0100, "ImageWidth", F::kPlain},
    {0x0101, "ImageLength", F::kPlain},
    {0x0102, "BitsPerSample", F::kPlain},
    {0x0103, "Compression", F::kEnumerated},
    {0x0106, "PhotometricInterpretation", F::kPlain},
    {0x0107, "Thresholding", F::kPlain},
    {0x0108, "CellWidth", F::kPlain},
    {0x0109, "CellLength", F::kPlain},
    {0x010A, "FillOrder", F::kPlain},
    {0x010D, "DocumentName", F::kPlain},
    {0x010E, "ImageDescription", F::kPlain},
    {0x010F, "Make", F::kPlain},
    {0x0110, "Model", F::kPlain},
    {0x0111, "StripOffsets", F::kPlain},
    {0x0112, "Orientation", F::kEnumerated},
    {0x0115, "SamplesPerPixel", F::kPlain},
    {0x0116, "RowsPerStrip", F::kPlain},
    {0x0117, "StripByteCounts", F::kPlain},
    {0x0118, "MinSampleValue", F::kPlain},
    {0x0119, "MaxSampleValue", F::kPlain},
    {0x011A, "XResolution", F::kPlain},
    {0x011B, "YResolution", F::kPlain},
    {0x011C, "PlanarConfiguration", F::kPlain},
    {0x011D, "PageName", F::kCharacters},
    {0x011E, "XPosition", F::kPlain},
    {0x011F, "YPosition", F::kPlain},
    {0x0122, "GrayResponseUnit", F::kEnumerated},
    {0x0123, "GrayResponseCurve", F::kPlain},
    {0x0124, "T4Options", F::kPlain},
    {0x0125, "T6Options", F::kPlain},
    {0x0128, "ResolutionUnit", F::kEnumerated},
    {0x0129, "PageNumber", F::kPlain},
    {0x012C, "ColorResponseUnit", F::kPlain},
    {0x012D, "TransferFunction", F::kPlain},
    {0x0131, "Software", F::kPlain},
    {0x0132, "DateTime", F::kPlain},
    {0x013B, "Artist", F::kPlain},
    {0x013C, "HostComputer", F::kPlain},
    {0x013D, "Predictor", F::kEnumerated},
    {0x013E, "WhitePoint", F::kPlain},
    {0x013F, "PrimaryChromaticities", F::kPlain},
    {0x0140, "ColorMap", F::kPlain},
    {0x0141, "HalftoneHints", F::kPlain},
    {0x0142, "TileWidth", F::kPlain},
    {0x0143, "TileLength", F::kPlain},
    {0x0144, "TileOffsets", F::kPlain},
    {0x0145, "TileByteCounts", F::kPlain},
    {0x0146, "BadFaxLines", F::kPlain},
    {0x0147, "CleanFaxData", F::kEnumerated},
    {0x0148, "ConsecutiveBadFaxLines", F::kPlain},
    {0x014A, "SubIFDs", F::kPlain},
    {0x014C, "InkSet", F::kEnumerated},
    {0x014D, "InkNames", F::kPlain},
    {0x014E, "NumberofInks", F::kPlain},
    {0x0150, "DotRange", F::kPlain},
    {0x0151, "TargetPrinter", F::kPlain},
    {0x0152, "ExtraSamples", F::kEnumerated},
    {0x0153, "SampleFormat", F::kEnumerated},
    {0x0154, "SMinSampleValue", F::kPlain},
    {0x0155, "SMaxSampleValue", F::kPlain},
    {0x0156, "TransferRange", F::kPlain},
    {0x0157, "ClipPath", F::kPlain},
    {0x015B, "JPEGTables", F::kPlain},
    {0x0200, "JPEGProc", F::kPlain},
    {0x0201, "JPEGInterchangeFormat", F::kPlain},
    {0x0202, "JPEGInterchangeFormatLength", F::kPlain},
    {0x0211, "YCbCrCoefficients", F::kPlain},
    {0x0212, "YCbCrSubSampling", F::kPlain},
    {0x0213, "YCbCrPositioning", F::kEnumerated},
    {0x0214, "ReferenceBlackWhite", F::kPlain},
    {0x02BC, "ApplicationNotes", F::kPlain},  // XMP; never printed (see exif.cc)
    {0x4746, "Rating", F::kPlain},            // Windows
    // TIFF/EP and other private tags seen in EXIF blocks.
    {0x828D, "CFARepeatPatternDim", F::kPlain},
    {0x828E, "CFAPattern", F::kPlain},
    {0x828F, "BatteryLevel", F::kPlain},
    {0x8298, "Copyright", F::kPlain},
    {0x829A, "ExposureTime", F::kPlain},
    {0x829D, "FNumber", F::kPlain},
    {0x83BB, "IPTC/NAA", F::kPlain},
    {0x8769, "ExifOffset", F::kPlain},  // the Exif IFD pointer
    {0x8773, "InterColorProfile", F::kPlain},
    // EXIF 2.3.
    {0x8822, "ExposureProgram", F::kEnumerated},
    {0x8824, "SpectralSensitivity", F::kPlain},
    {0x8825, "GPSInfo", F::kGpsIfd},
    {0x8827, "ISOSpeedRatings", F::kPlain},  // PhotographicSensitivity
    {0x8828, "OECF", F::kPlain},
    {0x8829, "Interlace", F::kPlain},
    {0x882A, "TimeZoneOffset", F::kPlain},
    {0x882B, "SelfTimerMode", F::kPlain},
    {0x8830, "SensitivityType", F::kEnumerated},
    {0x8832, "RecommendedExposureIndex", F::kPlain},
    {0x8833, "ISOSpeed", F::kPlain},
    {0x9000, "ExifVersion", F::kCharacters},
    {0x9003, "DateTimeOriginal", F::kPlain},
    {0x9004, "DateTimeDigitized", F::kPlain},
    {0x9010, "OffsetTime", F::kPlain},
    {0x9011, "OffsetTimeOriginal", F::kPlain},
    {0x9012, "OffsetTimeDigitized", F::kPlain},
    {0x9101, "ComponentsConfiguration", F::kEnumerated},
    {0x9102, "CompressedBitsPerPixel", F::kPlain},
    {0x9201, "ShutterSpeedValue", F::kPlain},
    {0x9202, "ApertureValue", F::kPlain},
    {0x9203, "BrightnessValue", F::kPlain},
    {0x9204, "ExposureBiasValue", F::kPlain},
    {0x9205, "MaxApertureValue", F::kPlain},
    {0x9206, "SubjectDistance", F::kPlain},
    {0x9207, "MeteringMode", F::kEnumerated},
    {0x9208, "LightSource", F::kEnumerated},
    {0x9209, "Flash", F::kEnumerated},
    {0x920A, "FocalLength", F::kPlain},
    {0x920B, "FlashEnergy", F::kPlain},
    {0x920C, "SpatialFrequencyResponse", F::kPlain},
    {0x920D, "Noise", F::kPlain},
    {0x9211, "ImageNumber", F::kPlain},
    {0x9212, "SecurityClassification", F::kPlain},
    {0x9213, "ImageHistory", F::kPlain},
    {0x9214, "SubjectArea", F::kPlain},
    {0x9215, "ExposureIndex", F::kPlain},
    {0x9216, "TIFF/EPStandardID", F::kPlain},
    {0x927C, "MakerNote", F::kPlain},    // never printed (see exif.cc)
    {0x9286, "UserComment", F::kPlain},  // never printed (see exif.cc)
    {0x9290, "SubSecTime", F::kPlain},
    {0x9291, "SubSecTimeOriginal", F::kPlain},
    {0x9292, "SubSecTimeDigitized", F::kPlain},
    // Windows Explorer's.
    {0x9C9B, "XPTitle", F::kPlain},
    {0x9C9C, "XPComment", F::kPlain},
    {0x9C9D, "XPAuthor", F::kCharacters},
    {0x9C9E, "XPKeywords", F::kPlain},
    {0x9C9F, "XPSubject", F::kPlain},
    {0xA000, "FlashPixVersion", F::kCharacters},
    {0xA001, "ColorSpace", F::kEnumerated},
    {0xA002, "ExifImageWidth", F::kPlain},   // PixelXDimension
    {0xA003, "ExifImageLength", F::kPlain},  // PixelYDimension
    {0xA004, "RelatedSoundFile", F::kPlain},
    {0xA005, "InteroperabilityOffset", F::kInteropIfd},
    {0xA20B, "FlashEnergy", F::kPlain},
    {0xA20C, "SpatialFrequencyResponse", F::kPlain},
    {0xA20E, "FocalPlaneXResolution", F::kPlain},
    {0xA20F, "FocalPlaneYResolution", F::kPlain},
    {0xA210, "FocalPlaneResolutionUnit", F::kPlain},
    {0xA214, "SubjectLocation", F::kPlain},
    {0xA215, "ExposureIndex", F::kPlain},
    {0xA217, "SensingMethod", F::kEnumerated},
    {0xA300, "FileSource", F::kEnumerated},
    {0xA301, "SceneType", F::kEnumerated},
    {0xA302, "CVAPattern", F::kPlain},  // CFAPattern
    {0xA401, "CustomRendered", F::kEnumerated},
    {0xA402, "ExposureMode", F::kEnumerated},
    {0xA403, "WhiteBalance", F::kEnumerated},
    {0xA404, "DigitalZoomRatio", F::kPlain},
    {0xA405, "FocalLengthIn35mmFilm", F::kPlain},
    {0xA406, "SceneCaptureType", F::kEnumerated},
    {0xA407, "GainControl", F::kEnumerated},
    {0xA408, "Contrast", F::kEnumerated},
    {0xA409, "Saturation", F::kEnumerated},
    {0xA40A, "Sharpness", F::kEnumerated},
    {0xA40B, "DeviceSettingDescription", F::kPlain},
    {0xA40C, "SubjectDistanceRange", F::kPlain},
    {0xA420, "ImageUniqueID", F::kPlain},
    {0xA430, "CameraOwnerName", F::kPlain},
    {0xA431, "BodySerialNumber", F::kPlain},
    {0xA432, "LensSpecification", F::kPlain},
    {0xA433, "LensMake", F::kPlain},
    {0xA434, "LensModel", F::kPlain},
    {0xA435, "LensSerialNumber", F::kPlain},
    {0xA500, "Gamma", F::kPlain},
    {0xC4A5, "PrintIM", F::kPlain},
    {0xC61A, "BlackLevel", F::kPlain},  // DNG
    {0xEA1C, "Padding", F::kPlain},     // Windows
    {0xEA1D, "OffsetSchema", F::kPlain},
    {0xFDE8, "OwnerName", F::kPlain},
    {0xFDE9, "SerialNumber", F::kPlain},
};

constexpr ExifTag kGpsTags[] = {
    {0x0000, "GPSVersionID", F::kPlain},       {0x0001, "GPSLatitudeRef", F::kPlain},
    {0x0002, "GPSLatitude", F::kPlain},        {0x0003, "GPSLongitudeRef", F::kPlain},
    {0x0004, "GPSLongitude", F::kPlain},       {0x0005, "GPSAltitudeRef", F::kPlain},
    {0x0006, "GPSAltitude", F::kPlain},        {0x0007, "GPSTimeStamp", F::kPlain},
    {0x0008, "GPSSatellites", F::kPlain},      {0x0009, "GPSStatus", F::kPlain},
    {0x000A, "GPSMeasureMode", F::kPlain},     {0x000B, "GPSDOP", F::kPlain},
    {0x000C, "GPSSpeedRef", F::kPlain},        {0x000D, "GPSSpeed", F::kPlain},
    {0x000E, "GPSTrackRef", F::kPlain},        {0x000F, "GPSTrack", F::kPlain},
    {0x0010, "GPSImgDirectionRef", F::kPlain}, {0x0011, "GPSImgDirection", F::kPlain},
    {0x0012, "GPSMapDatum", F::kPlain},        {0x0013, "GPSDestLatitudeRef", F::kPlain},
    {0x0014, "GPSDestLatitude", F::kPlain},    {0x0015, "GPSDestLongitudeRef", F::kPlain},
    {0x0016, "GPSDestLongitude", F::kPlain},   {0x0017, "GPSDestBearingRef", F::kPlain},
    {0x0018, "GPSDestBearing", F::kPlain},     {0x0019, "GPSDestDistanceRef", F::kPlain},
    {0x001A, "GPSDestDistance", F::kPlain},    {0x001B, "GPSProcessingMethod", F::kPlain},
    {0x001C, "GPSAreaInformation", F::kPlain}, {0x001D, "GPSDate", F::kPlain},
    {0x001E, "GPSDifferential", F::kPlain},
};

constexpr ExifTag kInteroperabilityTags[] = {
    {0x0001, "InteroperabilityIndex", F::kPlain},
    {0x0002, "InteroperabilityVersion", F::kPlain},
    {0x1000, "RelatedImageFileFormat", F::kPlain},
    {0x1001, "RelatedImageWidth", F::kPlain},
    {0x1002, "RelatedImageLength", F::kPlain},
};

constexpr bool InIdOrder(std::span<const ExifTag> tags) {
  for (std::size_t i = 1; i < tags.size(); ++i) {
    if (tags[i - 1].id >= tags[i].id) return false;
  }
  return true;
}
static_assert(InIdOrder(kMainTags));
static_assert(InIdOrder(kGpsTags));
static_assert(InIdOrder(kInteroperabilityTags));

}  // namespace

const ExifTag* FindExifTag(ExifTable table, std::uint16_t id) {
  std::span<const ExifTag> tags = kMainTags;
  if (table == ExifTable::kGps) tags = kGpsTags;
  if (table == ExifTable::kInteroperability) tags = kInteroperabilityTags;
  const auto it = std::lower_bound(
      tags.begin(), tags.end(), id,
      [](const ExifTag& tag, std::uint16_t wanted) { return tag.id < wanted; });
  return it != tags.end() && it->id == id ? &*it : nullptr;
}

}  // namespace sluice
