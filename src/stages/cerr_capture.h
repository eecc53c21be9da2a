// Per-thread capture of what code writes on std::cerr.
//
// Why: cv::imdecode reports why an image failed to decode only by printing it on
// std::cerr (and OpenCV's logger prints its warnings there too), then returns an empty
// image. In a run over millions of URLs that is a line on the terminal per broken
// image, and the reason never reaches the item's result. The decode stage wraps the
// call in a CerrCapture: what the calling thread writes on std::cerr meanwhile is kept
// for the item's error instead of printed.
//
// How: the first CerrCapture puts a stream buffer of its own under std::cerr, once for
// the life of the process. It sends each write to the capture open on the writing
// thread, if there is one, and otherwise to std::cerr's original buffer, so output of
// other threads (and of this one outside a capture) is printed as before. Writes made
// through C stdio (fprintf(stderr, ...), e.g. libpng's warnings) are not seen.
//
// Thread-safe: each thread has its own capture; captures nest (the inner one sees the
// writes while it is open). Not for code that replaces std::cerr's buffer itself.
#ifndef SLUICE_STAGES_CERR_CAPTURE_H_
#define SLUICE_STAGES_CERR_CAPTURE_H_

#include <cstddef>
#include <string>

namespace sluice {

class CerrCapture {
 public:
  // Keeps at most `max_bytes` of what is written (the rest is dropped).
  explicit CerrCapture(std::size_t max_bytes = 4096);
  ~CerrCapture();
  CerrCapture(const CerrCapture&) = delete;
  CerrCapture& operator=(const CerrCapture&) = delete;

  // What this thread wrote on std::cerr since the capture began.
  const std::string& text() const { return text_; }

 private:
  friend class CerrRouter;
  void Append(const char* data, std::size_t size);

  const std::size_t max_bytes_;
  std::string text_;
  CerrCapture* outer_;  // the capture this one interrupts on this thread, or null
};

}  // namespace sluice

#endif  // SLUICE_STAGES_CERR_CAPTURE_H_
