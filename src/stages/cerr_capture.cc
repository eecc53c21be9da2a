#include "src/stages/cerr_capture.h"

#include <algorithm>
#include <iostream>
#include <mutex>
#include <streambuf>

namespace sluice {
namespace {

thread_local CerrCapture* current_capture = nullptr;

}  // namespace

// std::cerr's buffer once a capture has begun. Unbuffered (no put area): every write
// arrives here at once and goes where the writing thread's state says.
class CerrRouter final : public std::streambuf {
 public:
  explicit CerrRouter(std::streambuf* original) : original_(original) {}

 protected:
  int_type overflow(int_type c) override {
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    const char ch = traits_type::to_char_type(c);
    if (current_capture != nullptr) {
      current_capture->Append(&ch, 1);
      return c;
    }
    return original_->sputc(ch);
  }

  std::streamsize xsputn(const char* data, std::streamsize size) override {
    if (current_capture != nullptr) {
      current_capture->Append(data, static_cast<std::size_t>(size));
      return size;
    }
    return original_->sputn(data, size);
  }

  int sync() override { return current_capture != nullptr ? 0 : original_->pubsync(); }

 private:
  std::streambuf* const original_;  // never changes: no lock needed to read it
};

CerrCapture::CerrCapture(std::size_t max_bytes)
    : max_bytes_(max_bytes), outer_(current_capture) {
  static std::once_flag installed;
  std::call_once(installed, [] {
    // Never destroyed: std::cerr is flushed through it until the very end, after
    // static objects are gone (std::ios_base::Init's destructor).
    static CerrRouter* const router = new CerrRouter(std::cerr.rdbuf());
    std::cerr.rdbuf(router);
  });
  current_capture = this;
}

CerrCapture::~CerrCapture() { current_capture = outer_; }

void CerrCapture::Append(const char* data, std::size_t size) {
  text_.append(data, std::min(size, max_bytes_ - text_.size()));
}

}  // namespace sluice
