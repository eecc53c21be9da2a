#include "src/stages/jpeg_codec.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <opencv2/imgcodecs.hpp>
#include <vector>
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>

#include "src/stages/decode_stage.h"
#include "src/stages/image.h"
#include "src/stages/image_test_util.h"

namespace sluice {
namespace {

using testing::Encode;
using testing::Gradient;
using testing::MaxDifference;

// Encodes `channels`-per-pixel rows with libjpeg: what OpenCV cannot write (CMYK,
// custom progressive scan scripts).
Bytes EncodeWithLibjpeg(int width, int height, int channels, J_COLOR_SPACE space,
                        const std::vector<jpeg_scan_info>& scans = {}) {
  jpeg_compress_struct info{};
  jpeg_error_mgr errors{};
  info.err = jpeg_std_error(&errors);
  jpeg_create_compress(&info);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&info, &out, &size);
  info.image_width = static_cast<JDIMENSION>(width);
  info.image_height = static_cast<JDIMENSION>(height);
  info.input_components = channels;
  info.in_color_space = space;
  jpeg_set_defaults(&info);
  if (!scans.empty()) {
    info.scan_info = scans.data();
    info.num_scans = static_cast<int>(scans.size());
  }
  jpeg_start_compress(&info, TRUE);
  std::vector<unsigned char> row(static_cast<std::size_t>(width * channels));
  while (info.next_scanline < info.image_height) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      row[i] = static_cast<unsigned char>((i + info.next_scanline) * 7);
    }
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&info, rows, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  Bytes bytes(out, out + size);
  std::free(out);
  return bytes;
}

TEST(JpegDecoderTest, ScaleEighths) {
  EXPECT_EQ(JpegScaleEighths(4000, 0), 8);
  EXPECT_EQ(JpegScaleEighths(256, 256), 8);   // not larger than the target
  EXPECT_EQ(JpegScaleEighths(200, 256), 8);   // smaller: never upscaled here
  EXPECT_EQ(JpegScaleEighths(2048, 256), 1);  // 256
  EXPECT_EQ(JpegScaleEighths(2047, 256), 1);  // ceil(255.875) = 256
  EXPECT_EQ(JpegScaleEighths(2040, 256), 2);  // 255 would be one short
  EXPECT_EQ(JpegScaleEighths(1200, 256), 2);  // 300
  EXPECT_EQ(JpegScaleEighths(700, 256), 4);   // 350: 3/8 is never used
  EXPECT_EQ(JpegScaleEighths(512, 256), 4);
  EXPECT_EQ(JpegScaleEighths(300, 256), 8);   // 5/8..7/8 are never used
}

TEST(JpegDecoderTest, MatchesOpenCvAtFullAndReducedScale) {
  const Bytes jpeg = Encode(Gradient(321, 203), ".jpg");
  const cv::Mat buffer(1, static_cast<int>(jpeg.size()), CV_8UC1,
                       const_cast<std::uint8_t*>(jpeg.data()));
  JpegDecodeResult full = DecodeJpeg(jpeg, 8);
  ASSERT_FALSE(full.pixels.empty()) << full.error;
  ASSERT_EQ(full.pixels.type(), CV_8UC3);
  const cv::Mat reference = cv::imdecode(buffer, cv::IMREAD_COLOR);
  ASSERT_EQ(full.pixels.size(), reference.size());
  EXPECT_LE(MaxDifference(full.pixels, reference), 1.0);

  JpegDecodeResult half = DecodeJpeg(jpeg, 4);
  ASSERT_FALSE(half.pixels.empty()) << half.error;
  const cv::Mat reduced = cv::imdecode(buffer, cv::IMREAD_REDUCED_COLOR_2);
  ASSERT_EQ(half.pixels.size(), reduced.size());  // 161 x 102: rounded up
  EXPECT_EQ(half.pixels.cols, 161);
  EXPECT_LE(MaxDifference(half.pixels, reduced), 1.0);

  JpegDecodeResult three = DecodeJpeg(jpeg, 3);
  ASSERT_FALSE(three.pixels.empty()) << three.error;
  EXPECT_EQ(three.pixels.cols, 121);  // ceil(321 * 3 / 8)
  EXPECT_EQ(three.pixels.rows, 77);   // ceil(203 * 3 / 8)
}

TEST(JpegDecoderTest, GrayscaleBecomesBgr) {
  cv::Mat gray(40, 30, CV_8UC1, cv::Scalar(77));
  const JpegDecodeResult result = DecodeJpeg(Encode(gray, ".jpg"), 8);
  ASSERT_FALSE(result.pixels.empty()) << result.error;
  ASSERT_EQ(result.pixels.type(), CV_8UC3);
  const cv::Vec3b pixel = result.pixels.at<cv::Vec3b>(10, 10);
  EXPECT_EQ(pixel[0], pixel[1]);
  EXPECT_EQ(pixel[1], pixel[2]);
  EXPECT_NEAR(pixel[0], 77, 2);
}

TEST(JpegDecoderTest, CmykIsLeftToOpenCv) {
  const Bytes cmyk = EncodeWithLibjpeg(48, 32, 4, JCS_CMYK);
  const JpegDecodeResult result = DecodeJpeg(cmyk, 8);
  EXPECT_TRUE(result.pixels.empty());
  EXPECT_TRUE(result.unsupported_color);
  // The decode stage then decodes it with OpenCV.
  Record record(1, "u");
  record.Set("body", cmyk);
  DecodeStage(DecodeOptions{}).ProcessOne(record);
  ASSERT_FALSE(record.failed()) << record.error();
  ASSERT_NE(FindImage(record), nullptr);
  EXPECT_EQ(FindImage(record)->pixels().cols, 48);
  EXPECT_EQ(FindImage(record)->pixels().type(), CV_8UC3);
}

TEST(JpegDecoderTest, CorruptDataIsAnErrorNotACrash) {
  Bytes jpeg = Encode(Gradient(64, 64), ".jpg");
  // Garbage in the frame header: libjpeg's fatal error comes back as a message.
  for (std::size_t i = 4; i < 40 && i < jpeg.size(); ++i) jpeg[i] = 0xFF;
  const JpegDecodeResult result = DecodeJpeg(jpeg, 8);
  EXPECT_TRUE(result.pixels.empty());
  EXPECT_FALSE(result.unsupported_color);
  EXPECT_EQ(result.error.rfind("libjpeg: ", 0), 0u) << result.error;
  EXPECT_TRUE(DecodeJpeg(Bytes{}, 8).pixels.empty());
  EXPECT_TRUE(DecodeJpeg(Bytes{0xFF, 0xD8}, 8).pixels.empty());
}

TEST(JpegDecoderTest, TruncatedFileKeepsItsTopRows) {
  Bytes jpeg = Encode(Gradient(128, 128), ".jpg");
  jpeg.resize(jpeg.size() / 2);
  const JpegDecodeResult result = DecodeJpeg(jpeg, 8);
  ASSERT_FALSE(result.pixels.empty()) << result.error;
  EXPECT_EQ(result.pixels.rows, 128);
}

TEST(JpegDecoderTest, TooManyProgressiveScansAreRefused) {
  // A legal progressive grayscale file of 704 scans: DC, then each AC coefficient
  // on its own, each refined bit by bit.
  std::vector<jpeg_scan_info> scans;
  constexpr int kBits = 10;
  for (int al = kBits; al >= 0; --al) {
    scans.push_back({1, {0, 0, 0, 0}, 0, 0, al == kBits ? 0 : al + 1, al});
  }
  for (int k = 1; k <= 63; ++k) {
    for (int al = kBits; al >= 0; --al) {
      scans.push_back({1, {0, 0, 0, 0}, k, k, al == kBits ? 0 : al + 1, al});
    }
  }
  ASSERT_GT(scans.size(), static_cast<std::size_t>(kMaxScans));
  const Bytes jpeg = EncodeWithLibjpeg(16, 16, 1, JCS_GRAYSCALE, scans);
  const JpegDecodeResult result = DecodeJpeg(jpeg, 8);
  EXPECT_TRUE(result.pixels.empty());
  EXPECT_NE(result.error.find("progressive scans"), std::string::npos) << result.error;
  // The same picture in a few scans decodes.
  const Bytes plain = EncodeWithLibjpeg(16, 16, 1, JCS_GRAYSCALE);
  EXPECT_FALSE(DecodeJpeg(plain, 8).pixels.empty());
}

TEST(JpegEncoderTest, SameBytesAsOpenCv) {
  const cv::Mat image = Gradient(257, 131);
  for (int quality : {50, 90, 95}) {
    const JpegEncodeResult ours = EncodeJpeg(image, quality);
    ASSERT_FALSE(ours.bytes.empty()) << ours.error;
    EXPECT_EQ(ours.bytes, Encode(image, ".jpg", {cv::IMWRITE_JPEG_QUALITY, quality}))
        << "quality " << quality;
  }
  // A view into a larger image (rows not contiguous) encodes its own pixels only.
  const cv::Mat view = image(cv::Rect(10, 5, 100, 60));
  const JpegEncodeResult cropped = EncodeJpeg(view, 90);
  ASSERT_FALSE(cropped.bytes.empty());
  const JpegDecodeResult back = DecodeJpeg(cropped.bytes, 8);
  EXPECT_EQ(back.pixels.size(), cv::Size(100, 60));
}

TEST(JpegEncoderTest, OtherTypesAreRefused) {
  EXPECT_FALSE(EncodeJpeg(cv::Mat(10, 10, CV_8UC1), 90).error.empty());
  EXPECT_FALSE(EncodeJpeg(cv::Mat(), 90).error.empty());
  EXPECT_TRUE(EncodeJpeg(cv::Mat(), 90).bytes.empty());
}

}  // namespace
}  // namespace sluice
