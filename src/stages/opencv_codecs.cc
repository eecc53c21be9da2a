#include "src/stages/opencv_codecs.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <mutex>
#include <optional>
#include <string>

#ifndef SLUICE_IMGCODECS_SONAME
#error "SLUICE_IMGCODECS_SONAME: the build names the libopencv_imgcodecs to load"
#endif

namespace sluice {
namespace {

// The functions' symbols in the library (the Itanium C++ ABI names of the
// declarations in opencv2/imgcodecs.hpp; opencv_codecs_test.cc checks that they are
// the very functions a linked program calls).
constexpr const char* kImdecodeSymbol = "_ZN2cv8imdecodeERKNS_11_InputArrayEi";
constexpr const char* kImencodeSymbol =
    "_ZN2cv8imencodeERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEERKNS_"
    "11_InputArrayERSt6vectorIhSaIhEERKSB_IiSaIiEE";

}  // namespace

Result<OpenCvCodecs> LoadOpenCvCodecsFrom(const std::string& library) {
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    return Internal(fmt::format("cannot load {}: {}", library, dlerror()));
  }
  void* imdecode = dlsym(handle, kImdecodeSymbol);
  void* imencode = dlsym(handle, kImencodeSymbol);
  if (imdecode == nullptr || imencode == nullptr) {
    // It stays loaded: harmless, and nothing of it is used.
    return Internal(fmt::format("{} has no cv::imdecode or cv::imencode", library));
  }
  OpenCvCodecs codecs;
  codecs.imdecode = reinterpret_cast<decltype(OpenCvCodecs::imdecode)>(imdecode);
  codecs.imencode = reinterpret_cast<decltype(OpenCvCodecs::imencode)>(imencode);
  return codecs;
}

Result<const OpenCvCodecs*> LoadOpenCvCodecs() {
  static std::once_flag once;
  static std::optional<Result<OpenCvCodecs>> loaded;
  std::call_once(once,
                 [] { loaded.emplace(LoadOpenCvCodecsFrom(SLUICE_IMGCODECS_SONAME)); });
  if (!loaded->ok()) return loaded->status();
  return &loaded->value();
}

}  // namespace sluice
