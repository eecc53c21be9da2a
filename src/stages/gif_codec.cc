#include "src/stages/gif_codec.h"

#include <fmt/format.h>
#include <gif_lib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

namespace sluice {
namespace {

struct Input {
  std::span<const std::uint8_t> bytes;
  std::size_t offset = 0;
};

int Read(GifFileType* gif, GifByteType* out, int length) {
  auto* input = static_cast<Input*>(gif->UserData);
  const std::size_t n = std::min(static_cast<std::size_t>(std::max(length, 0)),
                                 input->bytes.size() - input->offset);
  if (n > 0) std::memcpy(out, input->bytes.data() + input->offset, n);
  input->offset += n;
  return static_cast<int>(n);
}

std::string GifError(int code) {
  const char* text = GifErrorString(code);
  return fmt::format("gif: {}", text != nullptr ? text : "unknown error");
}

// The transparent colour index a Graphics Control Extension sets, or -1.
int TransparentIndex(const GifByteType* block) {
  if (block == nullptr || block[0] < 4 || (block[1] & 0x01) == 0) return -1;
  return block[4];
}

}  // namespace

DecodedPixels DecodeGif(std::span<const std::uint8_t> bytes, std::int64_t max_pixels) {
  DecodedPixels result;
  Input input{bytes};
  int error = 0;
  GifFileType* gif = DGifOpen(&input, &Read, &error);
  if (gif == nullptr) {
    result.error = GifError(error);
    return result;
  }
  struct Closer {
    GifFileType* gif;
    ~Closer() {
      int ignored = 0;
      DGifCloseFile(gif, &ignored);
    }
  } closer{gif};
  if (gif->SWidth <= 0 || gif->SHeight <= 0) {
    result.error = fmt::format("gif: a {}x{} canvas", gif->SWidth, gif->SHeight);
    return result;
  }
  cv::Mat canvas(gif->SHeight, gif->SWidth, CV_8UC4, cv::Scalar(0, 0, 0, 0));

  int transparent = -1;
  while (true) {
    GifRecordType type = UNDEFINED_RECORD_TYPE;
    if (DGifGetRecordType(gif, &type) == GIF_ERROR) {
      result.error = GifError(gif->Error);
      return result;
    }
    if (type == TERMINATE_RECORD_TYPE) {
      result.error = "gif: the file has no image";
      return result;
    }
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* block = nullptr;
      if (DGifGetExtension(gif, &code, &block) == GIF_ERROR) {
        result.error = GifError(gif->Error);
        return result;
      }
      if (code == GRAPHICS_EXT_FUNC_CODE) transparent = TransparentIndex(block);
      while (block != nullptr) {
        if (DGifGetExtensionNext(gif, &block) == GIF_ERROR) {
          result.error = GifError(gif->Error);
          return result;
        }
      }
      continue;
    }
    if (type != IMAGE_DESC_RECORD_TYPE) continue;

    if (DGifGetImageDesc(gif) == GIF_ERROR) {
      result.error = GifError(gif->Error);
      return result;
    }
    const GifImageDesc& frame = gif->Image;
    const ColorMapObject* colours =
        frame.ColorMap != nullptr ? frame.ColorMap : gif->SColorMap;
    if (colours == nullptr) {
      result.error = "gif: the first frame has no colour table";
      return result;
    }
    if (frame.Width <= 0 || frame.Height <= 0 ||
        static_cast<std::int64_t>(frame.Width) * frame.Height > max_pixels) {
      result.error = fmt::format("gif: a first frame of {}x{} pixels (max_pixels {})",
                                 frame.Width, frame.Height, max_pixels);
      return result;
    }
    // Row order of the four passes of an interlaced frame: every 8th row from 0,
    // every 8th from 4, every 4th from 2, every 2nd from 1.
    constexpr std::array<int, 4> kPassStart = {0, 4, 2, 1};
    constexpr std::array<int, 4> kPassStep = {8, 8, 4, 2};
    std::vector<GifPixelType> line(static_cast<std::size_t>(frame.Width));
    const int passes = frame.Interlace ? 4 : 1;
    for (int pass = 0; pass < passes; ++pass) {
      const int start = frame.Interlace ? kPassStart[pass] : 0;
      const int step = frame.Interlace ? kPassStep[pass] : 1;
      for (int row = start; row < frame.Height; row += step) {
        if (DGifGetLine(gif, line.data(), frame.Width) == GIF_ERROR) {
          result.error = GifError(gif->Error);
          return result;
        }
        const int y = frame.Top + row;
        if (y < 0 || y >= canvas.rows) continue;
        auto* out = canvas.ptr<cv::Vec4b>(y);
        for (int col = 0; col < frame.Width; ++col) {
          const int x = frame.Left + col;
          const int index = line[static_cast<std::size_t>(col)];
          if (x < 0 || x >= canvas.cols || index == transparent ||
              index >= colours->ColorCount) {
            continue;
          }
          const GifColorType& c = colours->Colors[index];
          out[x] = cv::Vec4b(c.Blue, c.Green, c.Red, 255);
        }
      }
    }
    result.pixels = std::move(canvas);
    return result;
  }
}

}  // namespace sluice
