#include "src/input/delimited_parser.h"

#include <fmt/format.h>

#include <cstring>
#include <limits>
#include <unordered_set>
#include <utility>

#include "src/input/line_text.h"

namespace sluice {
namespace {

// A header error lists at most this many columns.
constexpr std::size_t kMaxColumnsInMessage = 20;

std::string ColumnList(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < kMaxColumnsInMessage; ++i) {
    if (i > 0) out += ", ";
    out += names[i];
  }
  if (names.size() > kMaxColumnsInMessage) {
    out += fmt::format(", ... ({} in all)", names.size());
  }
  return out;
}

}  // namespace

DelimitedParser::DelimitedParser(Dialect dialect, std::string url_column,
                                 LineReader* lines)
    : delimiter_(dialect == Dialect::kCsv ? ',' : '\t'),
      quoting_(dialect == Dialect::kCsv),
      url_column_(std::move(url_column)),
      lines_(lines),
      too_long_reason_(LineTooLongReason(lines->max_line_bytes())),
      record_too_long_reason_(
          fmt::format("record longer than {} bytes", lines->max_line_bytes())),
      max_kept_fields_(std::numeric_limits<std::size_t>::max()) {}

void DelimitedParser::StartField() {
  ++field_count_;
  if (field_count_ <= max_kept_fields_) {
    if (fields_.size() < field_count_) fields_.emplace_back();
    field_ = &fields_[field_count_ - 1];
  } else {
    field_ = &overflow_field_;
  }
  field_->clear();
}

void DelimitedParser::Feed(std::string_view text) {
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (true) {
    switch (state_) {
      case FieldState::kFieldStart:
        if (quoting_ && i < n && text[i] == '"') {
          state_ = FieldState::kQuoted;
          ++i;
          break;
        }
        state_ = FieldState::kUnquoted;
        [[fallthrough]];
      case FieldState::kUnquoted: {
        const void* found = std::memchr(text.data() + i, delimiter_, n - i);
        if (found == nullptr) {
          field_->append(text.substr(i));
          return;  // the record ends with the line
        }
        const std::size_t end = static_cast<const char*>(found) - text.data();
        field_->append(text.substr(i, end - i));
        i = end + 1;
        StartField();
        state_ = FieldState::kFieldStart;
        break;
      }
      case FieldState::kQuoted: {
        const void* found = std::memchr(text.data() + i, '"', n - i);
        if (found == nullptr) {
          field_->append(text.substr(i));
          return;  // the field, and the record, go on at the next line
        }
        const std::size_t end = static_cast<const char*>(found) - text.data();
        field_->append(text.substr(i, end - i));
        i = end + 1;
        state_ = FieldState::kQuoteInQuoted;
        break;
      }
      case FieldState::kQuoteInQuoted:
        if (i == n) return;  // the quoted field closed at the end of the record
        if (text[i] == '"') {
          field_->push_back('"');
          state_ = FieldState::kQuoted;
          ++i;
        } else if (text[i] == delimiter_) {
          StartField();
          state_ = FieldState::kFieldStart;
          ++i;
        } else {
          // `"a"b`: the record is rejected; read on as unquoted text to find its end.
          malformed_ = true;
          state_ = FieldState::kUnquoted;
        }
        break;
    }
  }
}

Result<DelimitedParser::RecordKind> DelimitedParser::ReadRecord(RejectedLine* reject) {
  LineReader::Line line;
  SLUICE_ASSIGN_OR_RETURN(bool more, lines_->Next(&line));
  if (!more) return RecordKind::kEnd;
  record_line_ = line.number;
  if (line.too_long) {
    SetReject(record_line_, too_long_reason_, line.text, reject);
    return RecordKind::kRejected;
  }
  TextProblem problem = CheckText(line.text);
  if (problem == TextProblem::kNone && TrimBlanks(line.text).empty()) {
    return RecordKind::kBlank;
  }

  record_start_.assign(line.text.substr(0, kExcerptBytes + 1));
  field_count_ = 0;
  StartField();
  state_ = FieldState::kFieldStart;
  malformed_ = false;
  Feed(line.text);

  std::size_t record_bytes = line.text.size();
  while (state_ == FieldState::kQuoted) {
    SLUICE_ASSIGN_OR_RETURN(more, lines_->Next(&line));
    if (!more) {
      SetReject(record_line_, "unterminated quoted field", record_start_, reject);
      return RecordKind::kRejected;
    }
    if (line.too_long) {
      SetReject(record_line_, too_long_reason_, record_start_, reject);
      return RecordKind::kRejected;
    }
    record_bytes += 1 + line.text.size();
    if (record_bytes > lines_->max_line_bytes()) {
      SetReject(record_line_, record_too_long_reason_, record_start_, reject);
      return RecordKind::kRejected;
    }
    if (problem == TextProblem::kNone) problem = CheckText(line.text);
    field_->push_back('\n');
    Feed(line.text);
  }
  if (problem != TextProblem::kNone) {
    SetReject(record_line_, TextProblemReason(problem), record_start_, reject);
    return RecordKind::kRejected;
  }
  if (malformed_) {
    SetReject(record_line_, "text after a closing quote", record_start_, reject);
    return RecordKind::kRejected;
  }
  return RecordKind::kRecord;
}

Status DelimitedParser::SetHeader() {
  header_.clear();
  for (std::size_t i = 0; i < field_count_; ++i) {
    header_.emplace_back(TrimBlanks(fields_[i]));
  }
  std::unordered_set<std::string_view> seen;
  for (const std::string& name : header_) {
    if (!seen.insert(name).second) {
      return InvalidArgument(
          fmt::format("column '{}' appears twice in the header", name));
    }
  }
  bool found = false;
  for (std::size_t i = 0; i < header_.size(); ++i) {
    if (header_[i] == url_column_) {
      url_index_ = i;
      found = true;
    }
  }
  if (!found) {
    return InvalidArgument(fmt::format(
        "no column named '{}' in the header (columns: {}); set input.url_column",
        url_column_, ColumnList(header_)));
  }
  // One more than the header, so that a record with too many fields is recognised.
  max_kept_fields_ = header_.size() + 1;
  header_done_ = true;
  return Status::Ok();
}

Result<DelimitedParser::RecordKind> DelimitedParser::ReadHeader() {
  RejectedLine reject;
  SLUICE_ASSIGN_OR_RETURN(const RecordKind kind, ReadRecord(&reject));
  switch (kind) {
    case RecordKind::kEnd:
    case RecordKind::kBlank:
      return kind;
    case RecordKind::kRejected:
      return InvalidArgument(fmt::format("header (line {}): {}: {}", reject.line,
                                         reject.reason, reject.excerpt));
    case RecordKind::kRecord:
      break;
  }
  SLUICE_RETURN_IF_ERROR(SetHeader());
  return RecordKind::kRecord;
}

Result<EntryKind> DelimitedParser::Next(ItemRow* item, RejectedLine* reject) {
  if (!header_done_) {
    SLUICE_ASSIGN_OR_RETURN(const RecordKind kind, ReadHeader());
    if (kind == RecordKind::kEnd) return EntryKind::kEnd;
    if (kind == RecordKind::kBlank) return EntryKind::kBlank;
  }
  SLUICE_ASSIGN_OR_RETURN(const RecordKind kind, ReadRecord(reject));
  switch (kind) {
    case RecordKind::kEnd:
      return EntryKind::kEnd;
    case RecordKind::kBlank:
      return EntryKind::kBlank;
    case RecordKind::kRejected:
      return EntryKind::kRejected;
    case RecordKind::kRecord:
      break;
  }
  if (field_count_ != header_.size()) {
    SetReject(record_line_,
              fmt::format("expected {} fields, found {}", header_.size(), field_count_),
              record_start_, reject);
    return EntryKind::kRejected;
  }
  const std::string_view url = TrimBlanks(fields_[url_index_]);
  if (url.empty()) {
    SetReject(record_line_, "empty URL", record_start_, reject);
    return EntryKind::kRejected;
  }
  // A quoted URL field may hold a newline, which no URL may.
  if (const TextProblem problem = CheckText(url); problem != TextProblem::kNone) {
    SetReject(record_line_, TextProblemReason(problem), record_start_, reject);
    return EntryKind::kRejected;
  }
  item->url.assign(url);
  item->columns_json.clear();
  for (std::size_t i = 0; i < header_.size(); ++i) {
    if (i != url_index_) AppendJsonMember(header_[i], fields_[i], &item->columns_json);
  }
  CloseJsonObject(&item->columns_json);
  return EntryKind::kItem;
}

Result<std::uint64_t> DelimitedParser::SkipLines(std::uint64_t lines) {
  while (!header_done_) {
    SLUICE_ASSIGN_OR_RETURN(const RecordKind kind, ReadHeader());
    if (kind == RecordKind::kEnd) return lines_->lines_read();
  }
  const std::uint64_t consumed = lines_->lines_read();
  if (lines > consumed) {
    SLUICE_RETURN_IF_ERROR(lines_->Skip(lines - consumed).ToStatus());
  }
  return lines_->lines_read();
}

}  // namespace sluice
