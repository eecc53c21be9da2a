#include "src/input/line_reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace sluice {
namespace {

constexpr std::string_view kByteOrderMark = "\xef\xbb\xbf";

// A line that may still end in "\r" is held whole while it is at most
// max_line_bytes + 1 bytes; twice that leaves every refill at least half a buffer.
std::size_t BufferCapacity(std::size_t max_line_bytes) {
  return std::max(LineReader::kBufferBytes, 2 * (max_line_bytes + 2));
}

}  // namespace

LineReader::LineReader(std::unique_ptr<ByteSource> source, std::size_t max_line_bytes)
    : source_(std::move(source)),
      max_line_bytes_(max_line_bytes),
      capacity_(BufferCapacity(max_line_bytes)),
      buffer_(new char[capacity_]) {
  long_line_prefix_.reserve(kLongLinePrefixBytes);
}

Status LineReader::SourceError(const Status& status) const {
  return status.WithContext(fmt::format("line {}", lines_read_ + 1));
}

Status LineReader::Fill() {
  if (begin_ > 0) {
    std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  Result<std::size_t> n =
      source_->Read(std::span<char>(buffer_.get() + end_, capacity_ - end_));
  if (!n.ok()) return SourceError(n.status());
  if (*n == 0) eof_ = true;
  end_ += *n;
  return Status::Ok();
}

Status LineReader::Refill() {
  begin_ = end_ = scanned_ = 0;
  return Fill();
}

bool LineReader::Emit(std::size_t length, Line* line) {
  std::string_view text(buffer_.get() + begin_, length);
  ++lines_read_;
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  if (lines_read_ == 1 && text.starts_with(kByteOrderMark)) {
    text.remove_prefix(kByteOrderMark.size());
  }
  line->number = lines_read_;
  line->too_long = text.size() > max_line_bytes_;
  line->text = line->too_long ? text.substr(0, kLongLinePrefixBytes) : text;
  return true;
}

Result<bool> LineReader::Next(Line* line) {
  while (true) {
    const char* start = buffer_.get() + begin_;
    const std::size_t pending = end_ - begin_;
    const void* newline = std::memchr(start + scanned_, '\n', pending - scanned_);
    if (newline != nullptr) {
      const std::size_t length = static_cast<const char*>(newline) - start;
      Emit(length, line);
      begin_ += length + 1;
      scanned_ = 0;
      return true;
    }
    scanned_ = pending;
    if (eof_) {
      if (pending == 0) return false;
      Emit(pending, line);
      begin_ = end_;
      scanned_ = 0;
      return true;
    }
    // Even without a final "\r" (and the first line's byte order mark, which does
    // not count either) this line cannot fit: stop holding it.
    const std::size_t mark =
        lines_read_ == 0 && std::string_view(start, pending).starts_with(kByteOrderMark)
            ? kByteOrderMark.size()
            : 0;
    if (pending > max_line_bytes_ + 1 + mark) return SkipLongLine(line);
    SLUICE_RETURN_IF_ERROR(Fill());
  }
}

Result<bool> LineReader::SkipLongLine(Line* line) {
  std::string_view prefix(buffer_.get() + begin_, end_ - begin_);
  if (lines_read_ == 0 && prefix.starts_with(kByteOrderMark)) {
    prefix.remove_prefix(kByteOrderMark.size());
  }
  // The prefix is the line's first kLongLinePrefixBytes bytes however the source
  // delivered them: it is completed from the refills.
  long_line_prefix_.assign(prefix.substr(0, kLongLinePrefixBytes));
  bool prefix_is_line = prefix.size() <= kLongLinePrefixBytes;
  // The line's number is taken now; errors while skipping name it too.
  while (true) {
    SLUICE_RETURN_IF_ERROR(Refill());
    if (end_ == 0) break;  // the input ends inside the line
    const void* newline = std::memchr(buffer_.get(), '\n', end_);
    const std::size_t line_bytes =
        newline != nullptr ? static_cast<const char*>(newline) - buffer_.get() : end_;
    if (prefix_is_line) {
      const std::size_t room = kLongLinePrefixBytes - long_line_prefix_.size();
      long_line_prefix_.append(buffer_.get(), std::min(line_bytes, room));
      prefix_is_line = line_bytes <= room;
    }
    if (newline != nullptr) {
      begin_ = line_bytes + 1;
      break;
    }
  }
  // As in Emit(): a line's final "\r" is not part of it.
  if (prefix_is_line && long_line_prefix_.ends_with('\r')) long_line_prefix_.pop_back();
  ++lines_read_;
  line->number = lines_read_;
  line->too_long = true;
  line->text = long_line_prefix_;
  return true;
}

Result<std::uint64_t> LineReader::Skip(std::uint64_t count) {
  std::uint64_t skipped = 0;
  while (skipped < count) {
    const void* newline = std::memchr(buffer_.get() + begin_, '\n', end_ - begin_);
    if (newline != nullptr) {
      begin_ = static_cast<const char*>(newline) - buffer_.get() + 1;
      scanned_ = 0;
      ++lines_read_;
      ++skipped;
      continue;
    }
    if (eof_) {
      if (begin_ < end_) {  // a last line without "\n"
        begin_ = end_;
        ++lines_read_;
        ++skipped;
      }
      break;
    }
    // The rest of the buffer is inside the line being skipped: keep nothing of it,
    // but remember that a line was started, so that a last line without "\n" counts.
    const bool line_started = begin_ < end_;
    SLUICE_RETURN_IF_ERROR(Refill());
    if (line_started && end_ == 0) {
      ++lines_read_;
      ++skipped;
      break;
    }
  }
  return skipped;
}

}  // namespace sluice
