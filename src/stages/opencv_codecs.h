// OpenCV's image codecs (cv::imdecode, cv::imencode from libopencv_imgcodecs),
// loaded the first time an image needs them.
//
// Why not link them: libopencv_imgcodecs brings GDAL and with it ~140 shared
// libraries, whose symbol relocation costs ~0.12 s at every start of every sluice
// command (measured: a program linking sluice's other libraries starts in 0.03 s,
// 0.15 s with imgcodecs). JPEG, the common case, is decoded and encoded through
// libjpeg directly (jpeg_codec.h); PNG, WebP, GIF and the other formats pay for the
// load once, at their first image.
//
// Thread-safe: the library is loaded once (std::call_once) and never unloaded.
#ifndef SLUICE_STAGES_OPENCV_CODECS_H_
#define SLUICE_STAGES_OPENCV_CODECS_H_

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "sluice/status.h"

namespace sluice {

struct OpenCvCodecs {
  // cv::imdecode(buffer, flags) and cv::imencode(ext, image, out, params): the
  // library's own functions, which throw cv::Exception as usual.
  cv::Mat (*imdecode)(const cv::_InputArray& buffer, int flags) = nullptr;
  bool (*imencode)(const std::string& ext, const cv::_InputArray& image,
                   std::vector<std::uint8_t>& out,
                   const std::vector<int>& params) = nullptr;
};

// The codecs of the libopencv_imgcodecs sluice was built against, or why it could
// not be loaded (its name and dlerror()); loaded by the first call.
Result<const OpenCvCodecs*> LoadOpenCvCodecs();

// The codecs of the shared library `library` (a file name or path for dlopen),
// loaded now; for LoadOpenCvCodecs and its tests. The library is never unloaded.
Result<OpenCvCodecs> LoadOpenCvCodecsFrom(const std::string& library);

}  // namespace sluice

#endif  // SLUICE_STAGES_OPENCV_CODECS_H_
