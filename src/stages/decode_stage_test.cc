#include "src/stages/decode_stage.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <opencv2/imgproc.hpp>
#include <random>
#include <string>
#include <vector>

#include "src/stages/animated_test_util.h"
#include "src/stages/image.h"
#include "src/stages/image_test_util.h"
#include "src/stages/jpeg_codec.h"
#include "src/stages/resize_stage.h"

namespace sluice {
namespace {

using testing::BuildImageStage;
using testing::Encode;
using testing::Gradient;

// Decodes `body`, planned for `next_resize` when given (as in a pipeline where that
// resize follows decode).
Record Decode(Bytes body, DecodeOptions options = {},
              const ResizeOptions* next_resize = nullptr) {
  Record record(1, "http://example.com/a");
  record.Set("body", std::move(body));
  DecodeStage stage(options);
  if (next_resize != nullptr) {
    const ResizeStage resize(*next_resize);
    stage.PlanFor(&resize);
  }
  stage.ProcessOne(record);
  return record;
}

std::int64_t IntField(const Record& record, const std::string& name) {
  const Value* value = record.Find(name);
  if (value == nullptr || !std::holds_alternative<std::int64_t>(*value)) return -1;
  return std::get<std::int64_t>(*value);
}

std::string StringField(const Record& record, const std::string& name) {
  const Value* value = record.Find(name);
  if (value == nullptr || !std::holds_alternative<std::string>(*value)) return "<unset>";
  return std::get<std::string>(*value);
}

void ExpectDecoded(const Record& record, const std::string& format, int width,
                   int height) {
  ASSERT_FALSE(record.failed()) << record.error();
  EXPECT_EQ(StringField(record, "format"), format);
  EXPECT_EQ(IntField(record, "width"), width);
  EXPECT_EQ(IntField(record, "height"), height);
  const ImagePayload* image = FindImage(record);
  ASSERT_NE(image, nullptr);
  EXPECT_EQ(image->pixels().type(), CV_8UC3);
  EXPECT_EQ(image->width(), width);
  EXPECT_EQ(image->height(), height);
  EXPECT_EQ(image->Describe(),
            "image " + std::to_string(width) + "x" + std::to_string(height));
  // The original bytes stay for later stages.
  EXPECT_NE(record.Find("body"), nullptr);
}

TEST(DecodeStageTest, JpegPngWebpBmpTiff) {
  const cv::Mat source = Gradient(64, 48);
  ExpectDecoded(Decode(Encode(source, ".jpg")), "jpeg", 64, 48);
  ExpectDecoded(Decode(Encode(source, ".png")), "png", 64, 48);
  ExpectDecoded(Decode(Encode(source, ".webp")), "webp", 64, 48);
  ExpectDecoded(Decode(Encode(source, ".bmp")), "bmp", 64, 48);
  ExpectDecoded(Decode(Encode(source, ".tiff")), "tiff", 64, 48);
}

TEST(DecodeStageTest, LosslessPixelsSurvive) {
  const cv::Mat source = Gradient(20, 10);
  const Record record = Decode(Encode(source, ".png"));
  ASSERT_FALSE(record.failed()) << record.error();
  EXPECT_EQ(cv::norm(FindImage(record)->pixels(), source, cv::NORM_INF), 0);
}

TEST(DecodeStageTest, GrayscaleBecomesBgr) {
  const cv::Mat gray(12, 8, CV_8UC1, cv::Scalar(77));
  for (const std::string ext : {".png", ".jpg"}) {
    const Record record = Decode(Encode(gray, ext));
    ASSERT_FALSE(record.failed()) << ext << ": " << record.error();
    const cv::Vec3b pixel = FindImage(record)->pixels().at<cv::Vec3b>(5, 5);
    EXPECT_NEAR(pixel[0], 77, 2) << ext;
    EXPECT_EQ(pixel[0], pixel[1]) << ext;
    EXPECT_EQ(pixel[1], pixel[2]) << ext;
  }
}

TEST(DecodeStageTest, SixteenBitIsScaledToEightBit) {
  cv::Mat deep(6, 6, CV_16UC3, cv::Scalar(65535, 32896, 0));
  Record record = Decode(Encode(deep, ".png"));
  ExpectDecoded(record, "png", 6, 6);
  cv::Vec3b pixel = FindImage(record)->pixels().at<cv::Vec3b>(2, 3);
  EXPECT_EQ(pixel, cv::Vec3b(255, 128, 0));
  // 16-bit with alpha takes the IMREAD_UNCHANGED path and our own conversion.
  cv::Mat deep_alpha(6, 6, CV_16UC4, cv::Scalar(65535, 32896, 0, 65535));
  record = Decode(Encode(deep_alpha, ".png"));
  ExpectDecoded(record, "png", 6, 6);
  pixel = FindImage(record)->pixels().at<cv::Vec3b>(2, 3);
  EXPECT_EQ(pixel, cv::Vec3b(255, 128, 0));
}

TEST(DecodeStageTest, AlphaIsCompositedOnWhite) {
  cv::Mat bgra(4, 4, CV_8UC4, cv::Scalar(0, 0, 255, 255));  // opaque red
  bgra.at<cv::Vec4b>(0, 0) = cv::Vec4b(0, 0, 0, 0);         // fully transparent black
  bgra.at<cv::Vec4b>(1, 1) = cv::Vec4b(0, 0, 0, 128);       // half-transparent black
  for (const auto& [ext, params] : std::vector<std::pair<std::string, std::vector<int>>>{
           {".png", {}}, {".webp", {cv::IMWRITE_WEBP_QUALITY, 101}}}) {
    const Record record = Decode(Encode(bgra, ext, params));
    ASSERT_FALSE(record.failed()) << ext << ": " << record.error();
    const cv::Mat& pixels = FindImage(record)->pixels();
    ASSERT_EQ(pixels.type(), CV_8UC3);
    EXPECT_EQ(pixels.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 255, 255)) << ext;
    EXPECT_EQ(pixels.at<cv::Vec3b>(2, 2), cv::Vec3b(0, 0, 255)) << ext;
    EXPECT_NEAR(pixels.at<cv::Vec3b>(1, 1)[0], 127, 1) << ext;
  }
}

TEST(DecodeStageTest, HugeDeclaredPngIsRefusedBeforeDecoding) {
  Bytes png = Encode(Gradient(8, 8), ".png");
  // Rewrite IHDR to declare 100000 x 100000 (10^10 pixels, 30 GB of BGR). The CRC is
  // now wrong too: nothing may get as far as decoding.
  for (std::size_t at : {16u, 20u}) {
    png[at] = 0x00;
    png[at + 1] = 0x01;
    png[at + 2] = 0x86;
    png[at + 3] = 0xA0;
  }
  const Record record = Decode(png);
  // Refused on the header, before any decoder ran: that error ("declares WxH
  // pixels, over max_pixels") comes from the header check alone, so it tells
  // refusing from decoding by what happened rather than by how long it took.
  EXPECT_EQ(record.reason(), FailureReason::kTooLarge);
  EXPECT_NE(record.error().find("declares 100000x100000 pixels"), std::string::npos)
      << record.error();
  EXPECT_EQ(FindImage(record), nullptr);
}

TEST(DecodeStageTest, HugeDeclaredJpegAndWebpAreRefused) {
  // A JPEG whose frame header (SOF0) claims 60000 x 60000.
  Bytes jpeg = Encode(Gradient(16, 16), ".jpg");
  bool patched = false;
  for (std::size_t at = 2; at + 9 < jpeg.size(); ++at) {
    if (jpeg[at] == 0xFF && jpeg[at + 1] == 0xC0) {
      for (std::size_t field : {at + 5, at + 7}) {
        jpeg[field] = 0xEA;  // 0xEA60 = 60000
        jpeg[field + 1] = 0x60;
      }
      patched = true;
      break;
    }
  }
  ASSERT_TRUE(patched);
  Record record = Decode(jpeg);
  EXPECT_EQ(record.reason(), FailureReason::kTooLarge) << record.error();
  EXPECT_NE(record.error().find("60000x60000"), std::string::npos) << record.error();
  // A WebP extended header claiming a 16384 x 16384 canvas.
  Bytes webp = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E',  'B',  'P', 'V',  'P',  '8',
                'X', 10,  0,   0,   0, 0, 0, 0, 0,   0xFF, 0x3F, 0,   0xFF, 0x3F, 0};
  record = Decode(webp);
  EXPECT_EQ(record.reason(), FailureReason::kTooLarge) << record.error();
}

TEST(DecodeStageTest, MaxPixelsOption) {
  DecodeOptions options;
  options.max_pixels = 20 * 20;
  EXPECT_FALSE(Decode(Encode(Gradient(20, 20), ".jpg"), options).failed());
  const Record record = Decode(Encode(Gradient(21, 20), ".jpg"), options);
  EXPECT_EQ(record.reason(), FailureReason::kTooLarge);
  // TIFF is checked after decoding.
  EXPECT_EQ(Decode(Encode(Gradient(21, 20), ".tiff"), options).reason(),
            FailureReason::kTooLarge);
}

TEST(DecodeStageTest, NotAnImage) {
  const std::string html = "<html>not found</html>";
  Record record = Decode(Bytes(html.begin(), html.end()));
  EXPECT_EQ(record.reason(), FailureReason::kNotImage);
  EXPECT_FALSE(record.error().empty());
  EXPECT_EQ(Decode(Bytes{}).reason(), FailureReason::kNotImage);
  Record no_body(2, "u");
  DecodeStage(DecodeOptions{}).ProcessOne(no_body);
  EXPECT_EQ(no_body.reason(), FailureReason::kNotImage);
}

TEST(DecodeStageTest, BrokenImagesFailToDecode) {
  // A PNG cut after its header: the size is readable, the pixels are not.
  Bytes png = Encode(Gradient(64, 48), ".png");
  png.resize(60);
  ::testing::internal::CaptureStderr();
  Record record = Decode(png);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(record.reason(), FailureReason::kDecode) << record.error();
  EXPECT_EQ(record.error(), "decode: png (60 bytes): png: file cut short");
  // A BMP cut short: OpenCV's reason is in the item's error, and nothing was printed.
  Bytes bmp = Encode(Gradient(64, 48), ".bmp");
  bmp.resize(200);
  ::testing::internal::CaptureStderr();
  record = Decode(bmp);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(record.reason(), FailureReason::kDecode) << record.error();
  EXPECT_NE(record.error().find("could not decode the bmp image (200 bytes): "),
            std::string::npos)
      << record.error();
  EXPECT_NE(record.error().find("Unexpected end of input stream"), std::string::npos)
      << record.error();
  // A JPEG whose header has no frame: unreadable header.
  record = Decode(Bytes{0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34});
  EXPECT_EQ(record.reason(), FailureReason::kDecode);
  // A GIF with a screen but no image.
  const Bytes gif = {'G', 'I', 'F', '8', '9', 'a', 10, 0, 10, 0, 0, 0, 0, 0x3B};
  record = Decode(gif);
  EXPECT_EQ(record.reason(), FailureReason::kDecode);
  EXPECT_EQ(record.error(), "decode: gif (14 bytes): gif: the file has no image");
}

TEST(DecodeStageTest, TruncatedJpegDecodesWithPaddedRows) {
  // libjpeg warns "premature end of data" and fills the missing rows; OpenCV returns
  // the image. We keep it: the top of the picture is real.
  Bytes jpeg = Encode(Gradient(256, 256), ".jpg");
  jpeg.resize(jpeg.size() / 2);
  const Record record = Decode(jpeg);
  ExpectDecoded(record, "jpeg", 256, 256);
}

// The side a JPEG side of `side` pixels has when decoded for a resize to `size`.
std::int64_t ReducedSide(std::int64_t side, std::int64_t scaled_side, int size) {
  const int m = JpegScaleEighths(
      scaled_side, static_cast<std::int64_t>(std::ceil(kReducedDecodeMargin * size)));
  return (side * m + 7) / 8;
}

TEST(DecodeStageTest, ReducedDecodeIsPlannedFromTheResizeAfterIt) {
  const Bytes jpeg = Encode(Gradient(2000, 1600), ".jpg");
  ResizeOptions resize;
  resize.size = 256;
  resize.mode = ResizeMode::kKeepRatio;  // scales the shorter side
  const Record record = Decode(jpeg, {}, &resize);
  ASSERT_FALSE(record.failed()) << record.error();
  EXPECT_EQ(IntField(record, "width"), 2000);
  EXPECT_EQ(IntField(record, "height"), 1600);
  const ImagePayload* image = FindImage(record);
  ASSERT_NE(image, nullptr);
  EXPECT_EQ(image->width(), ReducedSide(2000, 1600, 256));
  EXPECT_EQ(image->height(), ReducedSide(1600, 1600, 256));
  EXPECT_LT(image->width(), 2000);  // reduced at all
  EXPECT_GE(std::min(image->width(), image->height()), 256);
  EXPECT_EQ(image->original_width(), 2000);
  EXPECT_EQ(image->original_height(), 1600);
  EXPECT_FALSE(image->source_pixels());

  // border and keep_ratio_largest scale the longer side.
  for (const ResizeMode mode : {ResizeMode::kBorder, ResizeMode::kKeepRatioLargest}) {
    resize.mode = mode;
    for (const int size : {250, 300, 1100}) {
      resize.size = size;
      const Record longer = Decode(jpeg, {}, &resize);
      ASSERT_FALSE(longer.failed()) << longer.error();
      EXPECT_EQ(FindImage(longer)->width(), ReducedSide(2000, 2000, size)) << size;
      EXPECT_GE(FindImage(longer)->width(), size);
    }
  }
  resize.size = 1100;
  EXPECT_EQ(FindImage(Decode(jpeg, {}, &resize))->width(), 2000);  // 4/8: 1000 < 1100

  // No reduction without a resize after decode, or for a resize that keeps the size.
  EXPECT_EQ(FindImage(Decode(jpeg))->width(), 2000);
  resize.size = 256;
  resize.mode = ResizeMode::kNo;
  EXPECT_EQ(FindImage(Decode(jpeg, {}, &resize))->width(), 2000);
  DecodeStage decode({});
  resize.mode = ResizeMode::kBorder;
  const ResizeStage border(resize);
  decode.PlanFor(&border);
  EXPECT_GT(decode.reduction().side_at_least, 0);
  decode.PlanFor(nullptr);  // planned again: for no stage
  EXPECT_EQ(decode.reduction().side_at_least, 0);
  // PNG has no scaled decode: full size.
  EXPECT_EQ(FindImage(Decode(Encode(Gradient(600, 600), ".png"), {}, &resize))->width(),
            600);
}

TEST(DecodeStageTest, KeepGrayscaleKeepsOneChannel) {
  cv::Mat gray(30, 40, CV_8UC1);
  for (int y = 0; y < gray.rows; ++y) {
    for (int x = 0; x < gray.cols; ++x) gray.at<std::uint8_t>(y, x) = static_cast<std::uint8_t>(x * 6);
  }
  DecodeOptions keep;
  keep.keep_grayscale = true;
  for (const char* ext : {".jpg", ".png", ".bmp", ".tiff"}) {
    const Bytes bytes = Encode(gray, ext);
    const Record kept = Decode(bytes, keep);
    ASSERT_FALSE(kept.failed()) << ext << ": " << kept.error();
    EXPECT_EQ(FindImage(kept)->pixels().type(), CV_8UC1) << ext;
    EXPECT_EQ(IntField(kept, "width"), 40) << ext;
    const Record expanded = Decode(bytes);
    ASSERT_FALSE(expanded.failed()) << ext;
    EXPECT_EQ(FindImage(expanded)->pixels().type(), CV_8UC3) << ext;
    // The same picture either way.
    cv::Mat back;
    cv::cvtColor(FindImage(kept)->pixels(), back, cv::COLOR_GRAY2BGR);
    EXPECT_LE(cv::norm(back, FindImage(expanded)->pixels(), cv::NORM_INF), 1) << ext;
  }
  // Colour stays colour; gray with transparency is composited on white, as colour.
  EXPECT_EQ(FindImage(Decode(Encode(Gradient(40, 30), ".jpg"), keep))->pixels().type(),
            CV_8UC3);
  cv::Mat gray_alpha(20, 20, CV_8UC4, cv::Scalar(90, 90, 90, 128));
  EXPECT_EQ(FindImage(Decode(Encode(gray_alpha, ".png"), keep))->pixels().type(),
            CV_8UC3);
}

// A JPEG with an APP1 Exif segment (orientation 6: rotate 90 degrees clockwise)
// inserted after SOI.
Bytes JpegWithOrientation(const cv::Mat& image, std::uint8_t orientation) {
  const Bytes plain = Encode(image, ".jpg");
  const Bytes app1 = {0xFF, 0xE1, 0x00,        34,   'E', 'x', 'i', 'f', 0,
                      0,    'M',  'M',         0,    42,  0,   0,   0,   8,
                      0,    1,    0x01,        0x12, 0,   3,   0,   0,   0,
                      1,    0,    orientation, 0,    0,   0,   0,   0,   0};
  Bytes out(plain.begin(), plain.begin() + 2);
  out.insert(out.end(), app1.begin(), app1.end());
  out.insert(out.end(), plain.begin() + 2, plain.end());
  return out;
}

TEST(DecodeStageTest, ExifOrientationIsApplied) {
  // 40 wide, 20 high: left half red, right half blue.
  cv::Mat image(20, 40, CV_8UC3, cv::Scalar(0, 0, 255));
  image(cv::Rect(20, 0, 20, 20)).setTo(cv::Scalar(255, 0, 0));
  const Record record = Decode(JpegWithOrientation(image, 6));
  ASSERT_FALSE(record.failed()) << record.error();
  // Rotated 90 degrees clockwise: 20 wide, 40 high, the left (red) half on top.
  EXPECT_EQ(IntField(record, "width"), 20);
  EXPECT_EQ(IntField(record, "height"), 40);
  const cv::Mat& pixels = FindImage(record)->pixels();
  ASSERT_EQ(pixels.cols, 20);
  ASSERT_EQ(pixels.rows, 40);
  EXPECT_GT(pixels.at<cv::Vec3b>(5, 10)[2], 200);   // red on top
  EXPECT_GT(pixels.at<cv::Vec3b>(35, 10)[0], 200);  // blue below
  // Rotated pixels are not the source as stored: encode must not keep "body".
  EXPECT_FALSE(FindImage(record)->source_pixels());
  // Orientation 1 leaves the image as stored.
  const Record upright = Decode(JpegWithOrientation(image, 1));
  EXPECT_EQ(IntField(upright, "width"), 40);
  EXPECT_TRUE(FindImage(upright)->source_pixels());
}

TEST(DecodeStageTest, ExifOrientationIgnoredKeepsThePixelsAsStored) {
  // img2dataset's behaviour: the orientation tag is not read.
  cv::Mat image(20, 40, CV_8UC3, cv::Scalar(0, 0, 255));
  image(cv::Rect(20, 0, 20, 20)).setTo(cv::Scalar(255, 0, 0));
  DecodeOptions ignore;
  ignore.apply_exif_orientation = false;
  const Record record = Decode(JpegWithOrientation(image, 6), ignore);
  ASSERT_FALSE(record.failed()) << record.error();
  EXPECT_EQ(IntField(record, "width"), 40);
  EXPECT_EQ(IntField(record, "height"), 20);
  const ImagePayload* decoded = FindImage(record);
  EXPECT_GT(decoded->pixels().at<cv::Vec3b>(10, 5)[2], 200);   // red on the left
  EXPECT_GT(decoded->pixels().at<cv::Vec3b>(10, 35)[0], 200);  // blue on the right
  EXPECT_TRUE(decoded->source_pixels());
  // Through the registry too.
  auto stage = BuildImageStage("decode", {{"exif_orientation", "ignore"}});
  ASSERT_TRUE(stage.ok()) << stage.status().ToString();
  Record again(2, "http://example.com/b");
  again.Set("body", JpegWithOrientation(image, 6));
  static_cast<CpuStage&>(**stage).ProcessOne(again);
  EXPECT_EQ(IntField(again, "width"), 40);
}

TEST(DecodeStageTest, ExtractExifWritesImg2DatasetsExifText) {
  cv::Mat image(20, 40, CV_8UC3, cv::Scalar(0, 0, 255));
  DecodeOptions extract;
  extract.extract_exif = true;
  // The EXIF tags as JSON text (codes as numbers: src/stages/exif.h).
  const Record rotated = Decode(JpegWithOrientation(image, 6), extract);
  ASSERT_FALSE(rotated.failed()) << rotated.error();
  EXPECT_EQ(StringField(rotated, "exif"), R"({"Image Orientation": "6"})");
  // No EXIF: "{}".
  EXPECT_EQ(StringField(Decode(Encode(image, ".png"), extract), "exif"), "{}");
  // Off by default.
  EXPECT_EQ(Decode(JpegWithOrientation(image, 6)).Find("exif"), nullptr);
  // Read before the image is checked: bytes that are no image have it too.
  const Record not_image = Decode(Bytes{'<', 'h', 't', 'm', 'l', '>'}, extract);
  EXPECT_EQ(not_image.reason(), FailureReason::kNotImage);
  EXPECT_EQ(StringField(not_image, "exif"), "{}");
  // Where img2dataset writes None (exifread raises: here on the byte order "XX"),
  // no field.
  Bytes broken = JpegWithOrientation(image, 6);
  broken[12] = 'X';
  broken[13] = 'X';
  const Record unreadable = Decode(broken, extract);
  EXPECT_FALSE(unreadable.failed()) << unreadable.error();
  EXPECT_EQ(unreadable.Find("exif"), nullptr);
  // Through the registry.
  auto stage = BuildImageStage("decode", {{"extract_exif", "true"}});
  ASSERT_TRUE(stage.ok()) << stage.status().ToString();
  Record again(2, "http://example.com/b");
  again.Set("body", JpegWithOrientation(image, 3));
  static_cast<CpuStage&>(**stage).ProcessOne(again);
  EXPECT_EQ(StringField(again, "exif"), R"({"Image Orientation": "3"})");
}

// Bytes from the network can be anything. Randomly damaged images of every format the
// stage reads (bytes changed anywhere or in the header, cut short, 0xFF runs that look
// like markers), decoded at full and reduced scale: each either decodes to BGR pixels
// or fails with a reason and a message, and nothing is printed. Under the sanitizers this
// is the check that no decoder path reads or writes out of bounds.
TEST(DecodeStageTest, DamagedImagesDecodeOrSayWhy) {
  cv::Mat with_alpha(32, 40, CV_8UC4, cv::Scalar(10, 200, 30, 128));
  std::vector<Bytes> seeds = {
      Encode(Gradient(96, 80), ".jpg"),  JpegWithOrientation(Gradient(96, 80), 6),
      Encode(Gradient(40, 32), ".png"),  Encode(with_alpha, ".png"),
      Encode(Gradient(40, 32), ".webp"), Encode(Gradient(40, 32), ".bmp"),
      Encode(Gradient(40, 32), ".tiff"),
  };
  std::vector<std::uint8_t> progressive_buffer;
  ASSERT_TRUE(cv::imencode(".jpg", Gradient(96, 80), progressive_buffer,
                           {cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
  seeds.emplace_back(progressive_buffer.begin(), progressive_buffer.end());
  testing::GifFrame interlaced = testing::SolidGifFrame(40, 32, 2);
  interlaced.interlace = true;
  interlaced.transparent = 1;
  for (std::size_t i = 0; i < interlaced.indexes.size(); i += 7)
    interlaced.indexes[i] = 1;
  seeds.push_back(
      testing::MakeGif(40, 32, {interlaced, testing::SolidGifFrame(40, 32, 0)}));
  cv::Mat gradient_bgra;
  cv::cvtColor(Gradient(40, 32), gradient_bgra, cv::COLOR_BGR2BGRA);
  seeds.push_back(testing::MakeAnimatedWebp({with_alpha, gradient_bgra}));

  std::mt19937 rng(20261202);
  ResizeOptions resize_after;  // plans a reduced JPEG decode
  resize_after.size = 12;
  int decoded = 0, failed = 0;
  ::testing::internal::CaptureStderr();
  for (std::size_t s = 0; s < seeds.size(); ++s) {
    for (int round = 0; round < 400; ++round) {
      Bytes damaged = seeds[s];
      switch (round % 3) {
        case 0:  // a few bytes anywhere
          for (int i = 0; i < 1 + static_cast<int>(rng() % 4); ++i) {
            damaged[rng() % damaged.size()] = static_cast<std::uint8_t>(rng());
          }
          break;
        case 1:  // the header
          damaged[rng() % std::min<std::size_t>(damaged.size(), 160)] =
              static_cast<std::uint8_t>(rng());
          break;
        default:  // cut short, sometimes after a run of 0xFF
          damaged.resize(rng() % damaged.size());
          if (rng() % 2 == 0) damaged.insert(damaged.end(), 1 + rng() % 8, 0xFF);
          break;
      }
      const Record record = Decode(damaged, {}, round % 2 == 0 ? nullptr : &resize_after);
      const std::string where =
          "seed " + std::to_string(s) + ", round " + std::to_string(round);
      if (record.failed()) {
        ++failed;
        EXPECT_NE(record.reason(), FailureReason::kNone) << where;
        EXPECT_FALSE(record.error().empty()) << where;
        continue;
      }
      ++decoded;
      const ImagePayload* image = FindImage(record);
      ASSERT_NE(image, nullptr) << where;
      EXPECT_EQ(image->pixels().type(), CV_8UC3) << where;
      EXPECT_GT(image->width(), 0) << where;
      EXPECT_GT(image->height(), 0) << where;
    }
  }
  // Nothing reached the terminal: the reasons are in the items' errors.
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  // Both outcomes occur: the damage is neither always harmless nor always fatal.
  EXPECT_GT(decoded, 0);
  EXPECT_GT(failed, 0);
}

TEST(DecodeStageTest, AnimationsDecodeToTheirFirstFrameOnWhite) {
  // GIF: a 3x2 green first frame at (1, 1) on a 5x4 canvas, then a red one.
  testing::GifFrame green = testing::SolidGifFrame(3, 2, 1);
  green.left = 1;
  green.top = 1;
  const Record gif =
      Decode(testing::MakeGif(5, 4, {green, testing::SolidGifFrame(5, 4, 0)}));
  ExpectDecoded(gif, "gif", 5, 4);
  const cv::Mat& gif_pixels = FindImage(gif)->pixels();
  EXPECT_EQ(gif_pixels.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 255, 255));  // canvas: white
  EXPECT_EQ(gif_pixels.at<cv::Vec3b>(1, 1), cv::Vec3b(0, 255, 0));
  EXPECT_FALSE(FindImage(gif)->source_pixels());  // GIF is never kept as it is

  // WebP: blue, then red.
  const cv::Mat blue(12, 16, CV_8UC4, cv::Scalar(255, 0, 0, 255));
  const cv::Mat red(12, 16, CV_8UC4, cv::Scalar(0, 0, 255, 255));
  const Record webp = Decode(testing::MakeAnimatedWebp({blue, red}));
  ExpectDecoded(webp, "webp", 16, 12);
  EXPECT_EQ(FindImage(webp)->pixels().at<cv::Vec3b>(5, 5), cv::Vec3b(255, 0, 0));
}

TEST(DecodeStageTest, OptionsThroughRegistry) {
  EXPECT_TRUE(BuildImageStage("decode", {}).ok());
  EXPECT_TRUE(BuildImageStage("decode", {{"max_pixels", "1000"},
                                         {"exif_orientation", "ignore"},
                                         {"keep_grayscale", "true"}})
                  .ok());
  EXPECT_TRUE(BuildImageStage("decode", {{"extract_exif", "false"}}).ok());
  EXPECT_FALSE(BuildImageStage("decode", {{"exif_orientation", "rotate"}}).ok());
  EXPECT_FALSE(BuildImageStage("decode", {{"extract_exif", "maybe"}}).ok());
  EXPECT_FALSE(BuildImageStage("decode", {{"max_pixels", "0"}}).ok());
  // The scale options of earlier versions are refused with the reason.
  for (const char* removed : {"target_size", "target_side"}) {
    const auto old = BuildImageStage("decode", {{removed, "256"}});
    ASSERT_FALSE(old.ok()) << removed;
    EXPECT_NE(old.status().ToString().find("resize stage right after it"),
              std::string::npos)
        << old.status().ToString();
  }
  const auto unknown = BuildImageStage("decode", {{"max_pixel", "5"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().ToString().find("max_pixel"), std::string::npos);
}

}  // namespace
}  // namespace sluice
