// Animated test images for the decode tests: GIFs made with giflib's encoder, animated
// WebPs with libwebpmux's. Test-only; needs giflib and libwebpmux linked.
#ifndef SLUICE_STAGES_ANIMATED_TEST_UTIL_H_
#define SLUICE_STAGES_ANIMATED_TEST_UTIL_H_

#include <gif_lib.h>
#include <gtest/gtest.h>
#include <webp/encode.h>
#include <webp/mux.h>

#include <cstdint>
#include <opencv2/core.hpp>
#include <utility>
#include <vector>

#include "sluice/record.h"

namespace sluice::testing {

// Colour table of the test GIFs: 0 red, 1 green, 2 blue, 3 black.
inline const GifColorType kGifColours[4] = {
    {255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {0, 0, 0}};

struct GifFrame {
  int left = 0, top = 0, width = 0, height = 0;
  bool interlace = false;
  int transparent = -1;  // colour index, or -1
  // index of row y, column x: in row order, whatever `interlace`
  std::vector<std::uint8_t> indexes;
};

inline int WriteGif(GifFileType* gif, const GifByteType* data, int length) {
  auto* out = static_cast<Bytes*>(gif->UserData);
  out->insert(out->end(), data, data + length);
  return length;
}

// A GIF89a made by giflib's encoder.
inline Bytes MakeGif(int width, int height, const std::vector<GifFrame>& frames) {
  Bytes out;
  int error = 0;
  GifFileType* gif = EGifOpen(&out, &WriteGif, &error);
  EXPECT_NE(gif, nullptr);
  ColorMapObject* map = GifMakeMapObject(4, kGifColours);
  EGifSetGifVersion(gif, true);
  EXPECT_EQ(EGifPutScreenDesc(gif, width, height, 2, 0, map), GIF_OK);
  for (const GifFrame& frame : frames) {
    GraphicsControlBlock control{};
    control.DisposalMode = DISPOSAL_UNSPECIFIED;
    control.TransparentColor =
        frame.transparent >= 0 ? frame.transparent : NO_TRANSPARENT_COLOR;
    GifByteType extension[4];
    const std::size_t length = EGifGCBToExtension(&control, extension);
    EXPECT_EQ(EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, static_cast<int>(length),
                               extension),
              GIF_OK);
    EXPECT_EQ(EGifPutImageDesc(gif, frame.left, frame.top, frame.width, frame.height,
                               frame.interlace, nullptr),
              GIF_OK);
    std::vector<int> rows;
    if (frame.interlace) {
      for (const auto& [start, step] : {std::pair{0, 8}, {4, 8}, {2, 4}, {1, 2}}) {
        for (int y = start; y < frame.height; y += step) rows.push_back(y);
      }
    } else {
      for (int y = 0; y < frame.height; ++y) rows.push_back(y);
    }
    for (int y : rows) {
      std::vector<GifPixelType> line(frame.indexes.begin() + y * frame.width,
                                     frame.indexes.begin() + (y + 1) * frame.width);
      EXPECT_EQ(EGifPutLine(gif, line.data(), frame.width), GIF_OK);
    }
  }
  EXPECT_EQ(EGifCloseFile(gif, &error), GIF_OK);
  GifFreeMapObject(map);
  return out;
}

inline GifFrame SolidGifFrame(int width, int height, std::uint8_t index) {
  GifFrame frame;
  frame.width = width;
  frame.height = height;
  frame.indexes.assign(static_cast<std::size_t>(width * height), index);
  return frame;
}

// A lossless animated WebP of `frames` (BGRA, all of the canvas's size), made by
// libwebpmux's encoder.
inline Bytes MakeAnimatedWebp(const std::vector<cv::Mat>& frames) {
  WebPAnimEncoderOptions options;
  EXPECT_TRUE(WebPAnimEncoderOptionsInit(&options));
  const int width = frames[0].cols, height = frames[0].rows;
  WebPAnimEncoder* encoder = WebPAnimEncoderNew(width, height, &options);
  EXPECT_NE(encoder, nullptr);
  WebPConfig config;
  EXPECT_TRUE(WebPConfigInit(&config));
  config.lossless = 1;
  int timestamp = 0;
  for (const cv::Mat& frame : frames) {
    WebPPicture picture;
    EXPECT_TRUE(WebPPictureInit(&picture));
    picture.use_argb = 1;
    picture.width = width;
    picture.height = height;
    EXPECT_TRUE(
        WebPPictureImportBGRA(&picture, frame.data, static_cast<int>(frame.step)));
    EXPECT_TRUE(WebPAnimEncoderAdd(encoder, &picture, timestamp, &config));
    WebPPictureFree(&picture);
    timestamp += 100;
  }
  EXPECT_TRUE(WebPAnimEncoderAdd(encoder, nullptr, timestamp, nullptr));
  WebPData data;
  WebPDataInit(&data);
  EXPECT_TRUE(WebPAnimEncoderAssemble(encoder, &data));
  Bytes out(data.bytes, data.bytes + data.size);
  WebPDataClear(&data);
  WebPAnimEncoderDelete(encoder);
  return out;
}

}  // namespace sluice::testing

#endif  // SLUICE_STAGES_ANIMATED_TEST_UTIL_H_
