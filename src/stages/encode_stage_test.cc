#include "src/stages/encode_stage.h"

#include <gtest/gtest.h>

#include <memory>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "src/stages/decode_stage.h"
#include "src/stages/image.h"
#include "src/stages/image_test_util.h"
#include "src/stages/resize_stage.h"

namespace sluice {
namespace {

using testing::BuildImageStage;
using testing::Encode;
using testing::Gradient;

// A record as decode leaves it for `body`.
Record Decoded(Bytes body, DecodeOptions options = {}) {
  Record record(1, "http://example.com/a");
  record.Set("body", std::move(body));
  DecodeStage(options).ProcessOne(record);
  EXPECT_FALSE(record.failed()) << record.error();
  return record;
}

Record Encoded(Record record, EncodeOptions options) {
  EncodeStage(options).ProcessOne(record);
  EXPECT_FALSE(record.failed()) << record.error();
  return record;
}

const Bytes& EncodedBytes(const Record& record) {
  static const Bytes kNone;
  const Value* value = record.Find("encoded");
  if (value == nullptr || !std::holds_alternative<Bytes>(*value)) return kNone;
  return std::get<Bytes>(*value);
}

std::string Text(const Record& record, const std::string& name) {
  const Value* value = record.Find(name);
  if (value == nullptr || !std::holds_alternative<std::string>(*value)) return "<unset>";
  return std::get<std::string>(*value);
}

EncodeOptions Format(EncodeFormat format, int quality = 95) {
  EncodeOptions options;
  options.format = format;
  options.quality = quality;
  return options;
}

TEST(EncodeStageTest, RoundTripsEachFormatAtTheSameSize) {
  // A decoded JPEG re-encoded to each format decodes back to the same size.
  const Record source = Decoded(Encode(Gradient(64, 48), ".jpg"));
  for (EncodeFormat format :
       {EncodeFormat::kJpg, EncodeFormat::kPng, EncodeFormat::kWebp}) {
    const std::string ext(EncodeFormatExtension(format));
    SCOPED_TRACE(ext);
    Record record = Encoded(source, Format(format));
    EXPECT_EQ(Text(record, "ext"), ext);
    const Bytes& bytes = EncodedBytes(record);
    ASSERT_FALSE(bytes.empty());
    const Value* size = record.Find("encoded_bytes");
    ASSERT_NE(size, nullptr);
    EXPECT_EQ(std::get<std::int64_t>(*size), static_cast<std::int64_t>(bytes.size()));
    EXPECT_EQ(record.Find("body"), nullptr);  // dropped by default

    const Record back = Decoded(bytes);
    EXPECT_EQ(Text(back, "format"), format == EncodeFormat::kJpg ? "jpeg" : ext);
    EXPECT_EQ(FindImage(back)->width(), 64);
    EXPECT_EQ(FindImage(back)->height(), 48);
  }
}

TEST(EncodeStageTest, GrayscaleStaysOneChannelInJpegAndPng) {
  // decode with keep_grayscale hands over one channel; JPEG and PNG store it as is
  // (WebP has no grayscale: three equal channels).
  cv::Mat gray(30, 40, CV_8UC1);
  cv::randu(gray, cv::Scalar::all(0), cv::Scalar::all(255));
  DecodeOptions keep;
  keep.keep_grayscale = true;
  const Record source = Decoded(Encode(gray, ".png"), keep);
  ASSERT_EQ(FindImage(source)->pixels().type(), CV_8UC1);
  for (EncodeFormat format : {EncodeFormat::kJpg, EncodeFormat::kPng, EncodeFormat::kWebp}) {
    const std::string ext(EncodeFormatExtension(format));
    SCOPED_TRACE(ext);
    const Record record = Encoded(source, Format(format));
    const cv::Mat back = cv::imdecode(EncodedBytes(record), cv::IMREAD_UNCHANGED);
    ASSERT_FALSE(back.empty());
    EXPECT_EQ(back.size(), gray.size());
    EXPECT_EQ(back.channels(), format == EncodeFormat::kWebp ? 3 : 1);
    if (format == EncodeFormat::kPng) {
      EXPECT_EQ(cv::norm(back, gray, cv::NORM_INF), 0);
    }
  }
}

TEST(EncodeStageTest, PngIsLossless) {
  const cv::Mat pixels = Gradient(40, 30);
  Record record = Decoded(Encode(pixels, ".bmp"));  // not png: really encoded
  record = Encoded(std::move(record), Format(EncodeFormat::kPng));
  const cv::Mat back = cv::imdecode(EncodedBytes(record), cv::IMREAD_COLOR);
  EXPECT_EQ(cv::norm(back, pixels, cv::NORM_INF), 0);
}

TEST(EncodeStageTest, QualityAffectsSize) {
  // Noise-free gradients compress too well; add texture so quality matters.
  cv::Mat pixels = Gradient(128, 128);
  cv::randu(pixels, cv::Scalar::all(0), cv::Scalar::all(255));
  const Record source = Decoded(Encode(pixels, ".png"));
  for (EncodeFormat format : {EncodeFormat::kJpg, EncodeFormat::kWebp}) {
    SCOPED_TRACE(std::string(EncodeFormatExtension(format)));
    const std::size_t low = EncodedBytes(Encoded(source, Format(format, 20))).size();
    const std::size_t high = EncodedBytes(Encoded(source, Format(format, 95))).size();
    EXPECT_LT(low, high);
  }
}

TEST(EncodeStageTest, UnchangedSourceOfTheTargetFormatPassesThroughAsIs) {
  for (const std::string ext : {".jpg", ".png", ".webp"}) {
    SCOPED_TRACE(ext);
    const Bytes body = Encode(Gradient(50, 40), ext);
    Record record = Decoded(body);
    ASSERT_TRUE(FindImage(record)->source_pixels());
    // Resize with nothing to do keeps the payload, so still the source.
    ResizeOptions no_resize;
    no_resize.mode = ResizeMode::kNo;
    ResizeStage(no_resize).ProcessOne(record);
    const EncodeFormat format = ext == ".jpg"   ? EncodeFormat::kJpg
                                : ext == ".png" ? EncodeFormat::kPng
                                                : EncodeFormat::kWebp;
    // A quality that would change the bytes if it re-encoded.
    record = Encoded(std::move(record), Format(format, 30));
    EXPECT_EQ(EncodedBytes(record), body);
  }
}

TEST(EncodeStageTest, SkipReencodeFalseReencodesEveryImage) {
  const Bytes body = Encode(Gradient(50, 40), ".jpg");
  EncodeOptions always = Format(EncodeFormat::kJpg, 95);
  always.skip_reencode = false;
  const Record record = Encoded(Decoded(body), always);
  EXPECT_NE(EncodedBytes(record), body);
  EXPECT_EQ(FindImage(Decoded(EncodedBytes(record)))->width(), 50);
  // Through the registry.
  auto stage = testing::BuildImageStage("encode", {{"skip_reencode", "false"}});
  ASSERT_TRUE(stage.ok()) << stage.status().ToString();
  Record again = Decoded(body);
  static_cast<CpuStage&>(**stage).ProcessOne(again);
  EXPECT_NE(EncodedBytes(again), body);
}

TEST(EncodeStageTest, ReencodesWhenTheFormatDiffers) {
  const Bytes body = Encode(Gradient(50, 40), ".png");
  const Record record = Encoded(Decoded(body), Format(EncodeFormat::kJpg));
  EXPECT_NE(EncodedBytes(record), body);
  EXPECT_EQ(Text(Decoded(EncodedBytes(record)), "format"), "jpeg");
}

TEST(EncodeStageTest, ReencodesWhenResized) {
  const Bytes body = Encode(Gradient(64, 48), ".jpg");
  Record record = Decoded(body);
  ResizeOptions resize;
  resize.size = 24;
  ResizeStage(resize).ProcessOne(record);
  ASSERT_FALSE(record.failed()) << record.error();
  EXPECT_FALSE(FindImage(record)->source_pixels());
  record = Encoded(std::move(record), Format(EncodeFormat::kJpg));
  EXPECT_NE(EncodedBytes(record), body);
  const Record back = Decoded(EncodedBytes(record));
  EXPECT_EQ(FindImage(back)->width(), 32);
  EXPECT_EQ(FindImage(back)->height(), 24);
}

// (EXIF rotation: DecodeStageTest.ExifOrientationIsApplied.)
TEST(EncodeStageTest, ReducedDecodeAndAlphaAreNotSourcePixels) {
  // Decoded at reduced scale for the resize to 16 that follows.
  ResizeOptions resize;
  resize.size = 16;
  const ResizeStage next(resize);
  Record record(1, "http://example.com/a");
  record.Set("body", Encode(Gradient(128, 96), ".jpg"));
  DecodeStage decode({});
  decode.PlanFor(&next);
  decode.ProcessOne(record);
  ASSERT_FALSE(record.failed()) << record.error();
  EXPECT_LT(FindImage(record)->pixels().cols, 128);
  EXPECT_FALSE(FindImage(record)->source_pixels());
  // Alpha composited on white.
  cv::Mat bgra(20, 20, CV_8UC4, cv::Scalar(10, 20, 30, 128));
  EXPECT_FALSE(FindImage(Decoded(Encode(bgra, ".png")))->source_pixels());
  // Full-size decode without alpha is the source.
  EXPECT_TRUE(FindImage(Decoded(Encode(Gradient(128, 96), ".jpg")))->source_pixels());
}

TEST(EncodeStageTest, KeepBodyKeepsTheSourceBytes) {
  EncodeOptions options = Format(EncodeFormat::kPng);
  options.keep_body = true;
  const Record record = Encoded(Decoded(Encode(Gradient(8, 8), ".jpg")), options);
  EXPECT_NE(record.Find("body"), nullptr);
}

TEST(EncodeStageTest, DropsBodyAndPixelsUnlessKept) {
  const Record dropped =
      Encoded(Decoded(Encode(Gradient(8, 8), ".jpg")), Format(EncodeFormat::kPng));
  EXPECT_EQ(dropped.Find("body"), nullptr);
  EXPECT_EQ(FindImage(dropped), nullptr);
  EXPECT_NE(dropped.Find("encoded"), nullptr);
  EncodeOptions keep = Format(EncodeFormat::kPng);
  keep.keep_image = true;
  const Record kept = Encoded(Decoded(Encode(Gradient(8, 8), ".jpg")), keep);
  ASSERT_NE(FindImage(kept), nullptr);
  EXPECT_EQ(FindImage(kept)->width(), 8);
}

TEST(EncodeStageTest, ARecordWithoutImageFails) {
  Record record(1, "http://example.com/a");
  EncodeStage(EncodeOptions{}).ProcessOne(record);
  EXPECT_EQ(record.reason(), FailureReason::kStage);
  EXPECT_NE(record.error().find("decode"), std::string::npos);
}

TEST(EncodeStageTest, OptionsAreChecked) {
  EXPECT_TRUE(BuildImageStage("encode", {}).ok());
  EXPECT_TRUE(BuildImageStage("encode", {{"format", "webp"}, {"quality", "80"}}).ok());
  EXPECT_TRUE(
      BuildImageStage("encode", {{"format", "png"}, {"png_compression", "9"}}).ok());
  EXPECT_FALSE(BuildImageStage("encode", {{"format", "gif"}}).ok());
  EXPECT_FALSE(BuildImageStage("encode", {{"quality", "0"}}).ok());
  EXPECT_FALSE(BuildImageStage("encode", {{"quality", "101"}}).ok());
  EXPECT_FALSE(BuildImageStage("encode", {{"format", "png"}, {"quality", "90"}}).ok());
  EXPECT_FALSE(BuildImageStage("encode", {{"png_compression", "5"}}).ok());
  EXPECT_FALSE(BuildImageStage("encode", {{"png_compression", "10"}}).ok());
}

}  // namespace
}  // namespace sluice
