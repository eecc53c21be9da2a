// Byte sources: where input bytes come from, decompressed on the fly.
//
// A ByteSource hands out a stream of bytes in caller-provided buffers, so that a file
// of any size is read in constant memory. FileSource reads a regular file;
// MemorySource reads a string (tests, benchmarks). OpenDecompressor() wraps a raw
// source so that a gzip or zstd stream comes out decompressed. The compression is
// recognised by the stream's magic bytes, never by the file's name: a gzip file
// called urls.txt is read as gzip, and a plain file called urls.txt.gz as plain text.
//
// Decompression errors are Corruption statuses that say how many decompressed bytes
// came out before the stream broke, e.g. "gzip stream is corrupt after 12345
// decompressed bytes: invalid block type". Bytes already returned stay valid. A gzip
// source returns every byte it decoded before the error, whatever the size of the
// reads; a zstd source may hold back the frame or block in which the error lies
// (zstd reports no output from a call that fails), so how much of a corrupt zstd
// stream comes out can depend on the read sizes.
//
// Sources are not thread-safe: one reader at a time.
#ifndef SLUICE_INPUT_BYTE_SOURCE_H_
#define SLUICE_INPUT_BYTE_SOURCE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "sluice/status.h"

namespace sluice {

class ByteSource {
 public:
  virtual ~ByteSource() = default;

  // Reads up to out.size() bytes into `out` and returns how many were read; 0 means
  // the end of the stream (and only then). REQUIRES: !out.empty().
  virtual Result<std::size_t> Read(std::span<char> out) = 0;
};

// A regular file, read sequentially by Read() and at any offset by ReadAt().
class FileSource final : public ByteSource {
 public:
  // Opens `path` for reading. Errors: "cannot open: <reason>" (kNotFound when the
  // file does not exist), "not a regular file". The message does not repeat the
  // path; callers add it as context.
  static Result<std::unique_ptr<FileSource>> Open(const std::string& path);

  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  // The file's size when it was opened.
  std::uint64_t size() const { return size_; }

  // Reads exactly out.size() bytes at `offset`, without moving the Read() position.
  // REQUIRES: offset + out.size() <= size().
  Status ReadAt(std::uint64_t offset, std::span<char> out) const;

  Result<std::size_t> Read(std::span<char> out) override;

 private:
  FileSource(int fd, std::uint64_t size) : fd_(fd), size_(size) {}

  int fd_;
  std::uint64_t size_;
};

// Bytes in memory. Does not own them: `data` must outlive the source.
class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::string_view data) : data_(data) {}
  Result<std::size_t> Read(std::span<char> out) override;

 private:
  std::string_view data_;
};

enum class Compression { kNone, kGzip, kZstd };

// "plain", "gzip", "zstd".
std::string_view CompressionName(Compression compression);

// Recognises a stream by its first bytes (at least 4 should be given when the stream
// has them): 1f 8b is gzip, 28 b5 2f fd is zstd, anything else is plain.
Compression DetectCompression(std::string_view head);

// Returns a source that yields `raw` decompressed: `raw` itself for kNone. gzip
// streams may hold several concatenated members, zstd streams several frames; both
// read as one stream. Memory is constant: fixed buffers plus the decoder's window
// (32 KiB for gzip; up to 128 MiB for zstd frames made with a long window).
std::unique_ptr<ByteSource> OpenDecompressor(Compression compression,
                                             std::unique_ptr<ByteSource> raw);

}  // namespace sluice

#endif  // SLUICE_INPUT_BYTE_SOURCE_H_
