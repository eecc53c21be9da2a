// DelimitedParser: CSV (RFC 4180) and TSV inputs with a header row.
//
// The first non-blank record is the header. It must name the URL column; every other
// column is kept with each item, in header order, as ItemRow::columns_json. A header
// without the URL column, or with a column named twice, is an error for the whole
// file; a data record with the wrong number of fields or an empty URL is a reject.
//
// CSV fields may be quoted; inside quotes "" stands for one quote and a newline does
// not end the record. The parser is a state machine fed one physical line at a time,
// so a record spanning lines is parsed where it lies, and rejects carry the line on
// which the record starts. A record is bounded like a line: one that grows past
// max_line_bytes (an unterminated quote, typically) is rejected, and parsing starts
// again at the next line. A quote in the middle of an unquoted field is taken
// literally (a"b is the text a"b), as most CSV writers and readers do; text after a
// closing quote (`"a"b`) is a malformed record.
//
// TSV has no quoting: a field is whatever lies between tabs.
//
// Not thread-safe.
#ifndef SLUICE_INPUT_DELIMITED_PARSER_H_
#define SLUICE_INPUT_DELIMITED_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "src/input/input_format.h"
#include "src/input/line_reader.h"

namespace sluice {

class DelimitedParser final : public InputParser {
 public:
  enum class Dialect { kCsv, kTsv };

  // `lines` must outlive the parser.
  DelimitedParser(Dialect dialect, std::string url_column, LineReader* lines);

  // Errors, besides those of the LineReader: the header has no column named
  // url_column, names a column twice, or is itself unreadable (kInvalidArgument).
  Result<EntryKind> Next(ItemRow* item, RejectedLine* reject) override;
  Result<std::uint64_t> SkipLines(std::uint64_t lines) override;
  std::uint64_t lines_consumed() const override { return lines_->lines_read(); }

  // The header's column names, once read (trimmed of spaces and tabs).
  const std::vector<std::string>& header() const { return header_; }

 private:
  enum class RecordKind { kEnd, kRecord, kBlank, kRejected };
  enum class FieldState { kFieldStart, kUnquoted, kQuoted, kQuoteInQuoted };

  // Reads one record into fields_ (or a blank line, or a reject).
  Result<RecordKind> ReadRecord(RejectedLine* reject);
  // Feeds one physical line to the state machine.
  void Feed(std::string_view text);
  // Starts the next field of the record being read.
  void StartField();
  // Reads records until the header is found (or the input ends). Blank lines before
  // it are returned as kBlank; kRecord means the header is now set.
  Result<RecordKind> ReadHeader();
  Status SetHeader();

  const char delimiter_;
  const bool quoting_;
  const std::string url_column_;
  LineReader* const lines_;
  const std::string too_long_reason_;
  const std::string record_too_long_reason_;

  bool header_done_ = false;
  std::vector<std::string> header_;
  std::size_t url_index_ = 0;

  // The record being read. Only the first max_kept_fields_ fields are stored (a
  // record with more is rejected anyway); later ones go to overflow_field_.
  std::vector<std::string> fields_;
  std::size_t field_count_ = 0;
  std::size_t max_kept_fields_;
  std::string overflow_field_;
  std::string* field_ = nullptr;  // the field being filled
  FieldState state_ = FieldState::kFieldStart;
  bool malformed_ = false;
  std::uint64_t record_line_ = 0;  // where the record starts
  std::string record_start_;       // its first bytes, for an excerpt
};

}  // namespace sluice

#endif  // SLUICE_INPUT_DELIMITED_PARSER_H_
