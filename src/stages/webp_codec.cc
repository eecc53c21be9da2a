#include "src/stages/webp_codec.h"

#include <fmt/format.h>
#include <webp/decode.h>
#include <webp/demux.h>

#include <cstring>

namespace sluice {
namespace {

const char* StatusText(VP8StatusCode status) {
  switch (status) {
    case VP8_STATUS_OK:
      return "ok";
    case VP8_STATUS_OUT_OF_MEMORY:
      return "out of memory";
    case VP8_STATUS_INVALID_PARAM:
      return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR:
      return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE:
      return "unsupported feature";
    case VP8_STATUS_SUSPENDED:
      return "suspended";
    case VP8_STATUS_USER_ABORT:
      return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA:
      return "not enough data";
  }
  return "unknown error";
}

WebpDecodeResult DecodeFirstFrame(std::span<const std::uint8_t> bytes) {
  WebpDecodeResult result;
  result.animated = true;
  WebPAnimDecoderOptions options;
  if (!WebPAnimDecoderOptionsInit(&options)) {
    result.error = "webp: libwebp's animation decoder does not match its headers";
    return result;
  }
  options.color_mode = MODE_BGRA;
  options.use_threads = 0;
  const WebPData data{bytes.data(), bytes.size()};
  WebPAnimDecoder* decoder = WebPAnimDecoderNew(&data, &options);
  if (decoder == nullptr) {
    result.error = "webp: unreadable animation (corrupt or cut short)";
    return result;
  }
  struct Deleter {
    WebPAnimDecoder* decoder;
    ~Deleter() { WebPAnimDecoderDelete(decoder); }
  } deleter{decoder};
  WebPAnimInfo info;
  std::uint8_t* frame = nullptr;
  int timestamp = 0;
  if (!WebPAnimDecoderGetInfo(decoder, &info) || info.frame_count == 0 ||
      !WebPAnimDecoderGetNext(decoder, &frame, &timestamp)) {
    result.error = "webp: the animation's first frame does not decode";
    return result;
  }
  const int width = static_cast<int>(info.canvas_width);
  const int height = static_cast<int>(info.canvas_height);
  cv::Mat pixels(height, width, CV_8UC4);
  for (int y = 0; y < height; ++y) {
    std::memcpy(pixels.ptr(y), frame + static_cast<std::size_t>(y) * width * 4,
                static_cast<std::size_t>(width) * 4);
  }
  result.pixels = std::move(pixels);
  return result;
}

}  // namespace

WebpDecodeResult DecodeWebp(std::span<const std::uint8_t> bytes) {
  WebpDecodeResult result;
  if (bytes.empty()) {
    result.error = "webp: not enough data";
    return result;
  }
  WebPDecoderConfig config;
  if (!WebPInitDecoderConfig(&config)) {
    result.error = "webp: libwebp does not match its headers";
    return result;
  }
  VP8StatusCode status = WebPGetFeatures(bytes.data(), bytes.size(), &config.input);
  if (status != VP8_STATUS_OK) {
    result.error = fmt::format("webp: {}", StatusText(status));
    return result;
  }
  const WebPBitstreamFeatures& features = config.input;
  if (features.has_animation) return DecodeFirstFrame(bytes);
  if (features.width <= 0 || features.height <= 0) {
    result.error = fmt::format("webp: a {}x{} image", features.width, features.height);
    return result;
  }
  cv::Mat pixels(features.height, features.width, features.has_alpha ? CV_8UC4 : CV_8UC3);
  // libwebp writes straight into the rows of `pixels`.
  config.output.colorspace = features.has_alpha ? MODE_BGRA : MODE_BGR;
  config.output.is_external_memory = 1;
  config.output.u.RGBA.rgba = pixels.data;
  config.output.u.RGBA.stride = static_cast<int>(pixels.step);
  config.output.u.RGBA.size = pixels.total() * pixels.elemSize();
  config.options.use_threads = 0;
  status = WebPDecode(bytes.data(), bytes.size(), &config);
  WebPFreeDecBuffer(&config.output);  // frees nothing external; required by the API
  if (status != VP8_STATUS_OK) {
    result.error = fmt::format("webp: {}", StatusText(status));
    return result;
  }
  result.pixels = std::move(pixels);
  return result;
}

}  // namespace sluice
