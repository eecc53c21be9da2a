// Helpers for the input module's tests: a temporary directory, compressors, sources
// that return data in small pieces.
#ifndef SLUICE_INPUT_INPUT_FILES_TEST_UTIL_H_
#define SLUICE_INPUT_INPUT_FILES_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <stdlib.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "src/input/byte_source.h"
#include "tests/support/temp_dir.h"

namespace sluice::testing {

// One gzip member holding `data`.
inline std::string GzipCompress(std::string_view data, int level = 6) {
  z_stream stream{};
  if (deflateInit2(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
  std::string out(deflateBound(&stream, static_cast<uLong>(data.size())) + 64, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate failed");
  return out;
}

// One zstd frame holding `data`, with a content checksum.
inline std::string ZstdCompress(std::string_view data, int level = 3) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  std::string out(ZSTD_compressBound(data.size()), '\0');
  const std::size_t n =
      ZSTD_compress2(cctx, out.data(), out.size(), data.data(), data.size());
  ZSTD_freeCCtx(cctx);
  if (ZSTD_isError(n)) throw std::runtime_error("ZSTD_compress2 failed");
  out.resize(n);
  return out;
}

// `count` lines "https://example.com/img/<i>.jpg?k=<pseudo-random>", numbered from 0,
// each ending in "\n". The random part keeps compressed data from being tiny.
inline std::string NumberedUrls(std::size_t count, std::size_t first = 0) {
  std::mt19937_64 random(first);
  std::string out;
  for (std::size_t i = first; i < first + count; ++i) {
    out += "https://example.com/img/" + std::to_string(i) +
           ".jpg?k=" + std::to_string(random() % 1000000007) + "\n";
  }
  return out;
}

// The lines of `text`, without their "\n".
inline std::vector<std::string> SplitLines(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    lines.emplace_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

// `size` pseudo-random bytes, NULs and newlines included.
inline std::string RandomBytes(std::size_t size, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(random() & 0xff);
  return out;
}

// Reads a source to its end (or first error) through a buffer of `chunk` bytes.
inline Result<std::string> ReadAll(ByteSource& source, std::size_t chunk = 4096) {
  std::string out;
  std::string buffer(chunk, '\0');
  while (true) {
    SLUICE_ASSIGN_OR_RETURN(const std::size_t n, source.Read(std::span<char>(buffer)));
    if (n == 0) return out;
    out.append(buffer.data(), n);
  }
}

// A source over a string that returns at most `piece` bytes per Read(), so that
// every buffer boundary a reader must handle is crossed.
class PiecewiseSource final : public ByteSource {
 public:
  PiecewiseSource(std::string data, std::size_t piece)
      : data_(std::move(data)), piece_(piece) {}
  Result<std::size_t> Read(std::span<char> out) override {
    const std::size_t n = std::min({out.size(), piece_, data_.size() - offset_});
    std::memcpy(out.data(), data_.data() + offset_, n);
    offset_ += n;
    return n;
  }

 private:
  std::string data_;
  std::size_t piece_;
  std::size_t offset_ = 0;
};

// A source that returns `data`, then fails with `error`.
class FailingSource final : public ByteSource {
 public:
  FailingSource(std::string data, Status error)
      : data_(std::move(data)), error_(std::move(error)) {}
  Result<std::size_t> Read(std::span<char> out) override {
    if (offset_ == data_.size()) return error_;
    const std::size_t n = std::min(out.size(), data_.size() - offset_);
    std::memcpy(out.data(), data_.data() + offset_, n);
    offset_ += n;
    return n;
  }

 private:
  std::string data_;
  Status error_;
  std::size_t offset_ = 0;
};

}  // namespace sluice::testing

#endif  // SLUICE_INPUT_INPUT_FILES_TEST_UTIL_H_
