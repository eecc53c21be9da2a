// LineReader: splits a byte stream into lines in constant memory.
//
// Bytes are read into one fixed buffer (1 MiB, or more when max_line_bytes asks for
// it); a line is handed out as a view into that buffer, so reading a line copies
// nothing. A line ends at "\n"; a "\r" before it is dropped, as is a UTF-8 byte order
// mark at the start of the first line. The last line needs no "\n".
//
// A line longer than max_line_bytes is never held whole: once it is known to be too
// long, the reader keeps its first bytes (for an excerpt) and discards the rest as it
// streams past, then hands the line out marked too_long. Every line, too long or
// not, counts in the line numbers, so that numbers match what `sed -n Np` shows.
//
// Not thread-safe. Owns its source.
#ifndef SLUICE_INPUT_LINE_READER_H_
#define SLUICE_INPUT_LINE_READER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sluice/status.h"
#include "src/input/byte_source.h"

namespace sluice {

class LineReader {
 public:
  // The buffer size when max_line_bytes is small enough to fit it.
  static constexpr std::size_t kBufferBytes = 1 << 20;
  // How many bytes of a too-long line are kept for its excerpt.
  static constexpr std::size_t kLongLinePrefixBytes = 128;

  struct Line {
    // The line without its "\r\n" or "\n". For a too-long line, only its first
    // kLongLinePrefixBytes bytes. Valid until the next call to Next() or Skip().
    std::string_view text;
    std::uint64_t number = 0;  // 1-based
    bool too_long = false;     // longer than max_line_bytes (before any "\r")
  };

  // REQUIRES: max_line_bytes > 0.
  LineReader(std::unique_ptr<ByteSource> source, std::size_t max_line_bytes);

  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Reads the next line into *line. Returns false at the end of the input. An error
  // of the source (a corrupt compressed stream) comes back with the number of the
  // line being read as context: "line 678: gzip stream is corrupt ...".
  Result<bool> Next(Line* line);

  // Skips up to `count` lines without looking at them (no length limit, no checks).
  // Returns how many were skipped: fewer than `count` only at the end of the input.
  Result<std::uint64_t> Skip(std::uint64_t count);

  // Lines handed out or skipped so far: the number of the last one.
  std::uint64_t lines_read() const { return lines_read_; }

  std::size_t max_line_bytes() const { return max_line_bytes_; }

 private:
  // Moves the unread bytes to the front of the buffer and reads more after them.
  // Sets eof_ when the source is exhausted.
  Status Fill();
  // Reads a fresh buffer's worth, discarding whatever was in the buffer.
  Status Refill();
  // Hands out a complete line [begin_, begin_ + length).
  bool Emit(std::size_t length, Line* line);
  // Streams past the rest of a line that is already too long.
  Result<bool> SkipLongLine(Line* line);
  Status SourceError(const Status& status) const;

  std::unique_ptr<ByteSource> source_;
  const std::size_t max_line_bytes_;
  const std::size_t capacity_;
  std::unique_ptr<char[]> buffer_;
  std::size_t begin_ = 0;    // first unread byte
  std::size_t end_ = 0;      // end of the bytes read
  std::size_t scanned_ = 0;  // bytes after begin_ known to hold no "\n"
  bool eof_ = false;
  std::uint64_t lines_read_ = 0;
  std::string long_line_prefix_;
};

}  // namespace sluice

#endif  // SLUICE_INPUT_LINE_READER_H_
