#include "src/input/byte_source.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace sluice {
namespace {

// Compressed bytes are read in chunks of this size.
constexpr std::size_t kCompressedChunkBytes = 1 << 20;

std::string ErrnoText(int error) { return std::strerror(error); }

Status CorruptStream(std::string_view kind, std::uint64_t produced,
                     std::string_view why) {
  return Corruption(fmt::format("{} stream is corrupt after {} decompressed bytes: {}",
                                kind, produced, why));
}

// gzip, through zlib's inflate. windowBits 15 + 32 accepts gzip (and zlib) headers;
// after the end of a member the stream is reset, so that concatenated members (what
// `cat a.gz b.gz` and pigz produce) read as one stream.
class GzipSource final : public ByteSource {
 public:
  explicit GzipSource(std::unique_ptr<ByteSource> raw)
      : raw_(std::move(raw)), in_(new char[kCompressedChunkBytes]) {
    stream_.zalloc = Z_NULL;
    stream_.zfree = Z_NULL;
    stream_.opaque = Z_NULL;
    stream_.next_in = Z_NULL;
    stream_.avail_in = 0;
    init_result_ = inflateInit2(&stream_, 15 + 32);
  }
  ~GzipSource() override {
    if (init_result_ == Z_OK) inflateEnd(&stream_);
  }
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;

  Result<std::size_t> Read(std::span<char> out) override {
    if (init_result_ != Z_OK) return Internal("gzip: cannot initialise zlib");
    if (failed_) return failure_;
    while (true) {
      if (stream_.avail_in == 0 && !raw_eof_) {
        SLUICE_ASSIGN_OR_RETURN(
            std::size_t n, raw_->Read(std::span<char>(in_.get(), kCompressedChunkBytes)));
        if (n == 0) raw_eof_ = true;
        stream_.next_in = reinterpret_cast<Bytef*>(in_.get());
        stream_.avail_in = static_cast<uInt>(n);
      }
      if (member_done_) {
        if (stream_.avail_in == 0 && raw_eof_) return std::size_t{0};
        if (stream_.avail_in == 0) continue;  // need more input to know
        // Another member follows.
        inflateReset(&stream_);
        member_done_ = false;
      }
      stream_.next_out = reinterpret_cast<Bytef*>(out.data());
      stream_.avail_out = static_cast<uInt>(out.size());
      const int rc = inflate(&stream_, Z_NO_FLUSH);
      const std::size_t produced = out.size() - stream_.avail_out;
      produced_ += produced;
      if (rc == Z_STREAM_END) {
        member_done_ = true;
        if (produced > 0) return produced;
        continue;
      }
      if (rc == Z_OK || rc == Z_BUF_ERROR) {
        if (produced > 0) return produced;
        // No progress: inflate wants input, and there is none left.
        if (stream_.avail_in == 0 && raw_eof_) return Fail("unexpected end of file");
        continue;
      }
      // What this call decoded before the stream broke is handed out first, and the
      // error with the next call: how much comes out of a corrupt stream must not
      // depend on the size of the reads.
      Status failure = Fail(stream_.msg != nullptr ? stream_.msg : zError(rc));
      if (produced > 0) return produced;
      return failure;
    }
  }

 private:
  Status Fail(std::string_view why) {
    failed_ = true;
    failure_ = CorruptStream("gzip", produced_, why);
    return failure_;
  }

  std::unique_ptr<ByteSource> raw_;
  std::unique_ptr<char[]> in_;
  z_stream stream_{};
  int init_result_ = Z_OK;
  bool raw_eof_ = false;
  bool member_done_ = false;
  bool failed_ = false;
  Status failure_;
  std::uint64_t produced_ = 0;
};

// zstd, through ZSTD_decompressStream, which goes on by itself from one frame to the
// next (skippable frames included).
class ZstdSource final : public ByteSource {
 public:
  explicit ZstdSource(std::unique_ptr<ByteSource> raw)
      : raw_(std::move(raw)),
        in_capacity_(ZSTD_DStreamInSize()),
        in_(new char[in_capacity_]),
        dctx_(ZSTD_createDCtx()) {}
  ~ZstdSource() override { ZSTD_freeDCtx(dctx_); }
  ZstdSource(const ZstdSource&) = delete;
  ZstdSource& operator=(const ZstdSource&) = delete;

  Result<std::size_t> Read(std::span<char> out) override {
    if (dctx_ == nullptr) return Internal("zstd: cannot create a decompression context");
    if (failed_) return failure_;
    while (true) {
      if (input_.pos == input_.size && !raw_eof_) {
        SLUICE_ASSIGN_OR_RETURN(std::size_t n,
                                raw_->Read(std::span<char>(in_.get(), in_capacity_)));
        if (n == 0) raw_eof_ = true;
        input_ = ZSTD_inBuffer{in_.get(), n, 0};
      }
      const bool input_exhausted = input_.pos == input_.size && raw_eof_;
      if (input_exhausted && frame_done_ && !output_pending_) return std::size_t{0};
      ZSTD_outBuffer output{out.data(), out.size(), 0};
      const std::size_t consumed = input_.pos;
      const std::size_t rc = ZSTD_decompressStream(dctx_, &output, &input_);
      if (ZSTD_isError(rc)) return Fail(ZSTD_getErrorName(rc));
      produced_ += output.pos;
      // A call after a frame's end asks for the next frame's header (rc > 0) even
      // when it has no input to start one with: a frame is under way only once some
      // of its bytes were taken.
      if (rc == 0) {
        frame_done_ = true;
      } else if (input_.pos > consumed) {
        frame_done_ = false;
      }
      // A full output buffer may leave decoded bytes inside the context.
      output_pending_ = output.pos == output.size;
      if (output.pos > 0) return output.pos;
      if (input_exhausted) {
        if (frame_done_) return std::size_t{0};
        return Fail("unexpected end of file");
      }
    }
  }

 private:
  Status Fail(std::string_view why) {
    failed_ = true;
    failure_ = CorruptStream("zstd", produced_, why);
    return failure_;
  }

  std::unique_ptr<ByteSource> raw_;
  std::size_t in_capacity_;
  std::unique_ptr<char[]> in_;
  ZSTD_DCtx* dctx_;
  ZSTD_inBuffer input_{nullptr, 0, 0};
  bool raw_eof_ = false;
  bool frame_done_ = false;
  bool output_pending_ = false;
  bool failed_ = false;
  Status failure_;
  std::uint64_t produced_ = 0;
};

}  // namespace

Result<std::unique_ptr<FileSource>> FileSource::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    std::string message = "cannot open: " + ErrnoText(error);
    if (error == ENOENT) return NotFound(std::move(message));
    return IoError(std::move(message));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    return IoError("cannot stat: " + ErrnoText(error));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument("not a regular file");
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::unique_ptr<FileSource>(
      new FileSource(fd, static_cast<std::uint64_t>(st.st_size)));
}

FileSource::~FileSource() { ::close(fd_); }

Status FileSource::ReadAt(std::uint64_t offset, std::span<char> out) const {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd_, out.data() + done, out.size() - done,
                              static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot read: " + ErrnoText(errno));
    }
    if (n == 0) return IoError("cannot read: the file shrank while it was read");
    done += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

Result<std::size_t> FileSource::Read(std::span<char> out) {
  while (true) {
    const ssize_t n = ::read(fd_, out.data(), out.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) return IoError("cannot read: " + ErrnoText(errno));
  }
}

Result<std::size_t> MemorySource::Read(std::span<char> out) {
  const std::size_t n = std::min(out.size(), data_.size());
  std::memcpy(out.data(), data_.data(), n);
  data_.remove_prefix(n);
  return n;
}

std::string_view CompressionName(Compression compression) {
  switch (compression) {
    case Compression::kNone:
      return "plain";
    case Compression::kGzip:
      return "gzip";
    case Compression::kZstd:
      return "zstd";
  }
  return "unknown";
}

Compression DetectCompression(std::string_view head) {
  if (head.size() >= 2 && head[0] == '\x1f' && head[1] == '\x8b') {
    return Compression::kGzip;
  }
  if (head.size() >= 4 && head.substr(0, 4) == std::string_view("\x28\xb5\x2f\xfd", 4)) {
    return Compression::kZstd;
  }
  return Compression::kNone;
}

std::unique_ptr<ByteSource> OpenDecompressor(Compression compression,
                                             std::unique_ptr<ByteSource> raw) {
  switch (compression) {
    case Compression::kNone:
      return raw;
    case Compression::kGzip:
      return std::make_unique<GzipSource>(std::move(raw));
    case Compression::kZstd:
      return std::make_unique<ZstdSource>(std::move(raw));
  }
  return raw;
}

}  // namespace sluice
