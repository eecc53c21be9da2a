// Input formats: how the lines of an input file become items.
//
//   text   one URL per line, trimmed of surrounding spaces and tabs; no columns.
//   csv    RFC 4180 with a header row: quoted fields, "" inside quotes, newlines
//          inside quoted fields. The URL column is chosen by name; every other
//          column becomes a column of the item.
//   tsv    like csv, separated by tabs, without quoting.
//   jsonl  one JSON object per line; the URL is the member of that name (a string);
//          every other member becomes a column: strings as they are, other values
//          as their compact JSON text, numbers as written (see json_line.h).
//
// An InputParser pulls lines from a LineReader and hands out one entry at a time: an
// item, a rejected line (with its reason, line number and excerpt), or a blank line.
// Problems of one line are rejects and the parse goes on; only problems of the whole
// file (an unreadable stream, a CSV header without the URL column) are errors.
//
// Every line must be UTF-8 without control characters (see line_text.h), and a URL
// must not be empty; the URL is otherwise not checked here: a bad URL is data, and
// the fetch stage fails it with a reason.
//
// Parsers are not thread-safe.
#ifndef SLUICE_INPUT_INPUT_FORMAT_H_
#define SLUICE_INPUT_INPUT_FORMAT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sluice/status.h"
#include "sluice/store.h"
#include "src/input/line_reader.h"

namespace sluice {

enum class InputFormat { kText, kCsv, kTsv, kJsonl };

// "text", "csv", "tsv", "jsonl".
std::string_view InputFormatName(InputFormat format);

// Resolves the `format` option for the file at `path`: "text", "csv", "tsv" or
// "jsonl" as such; "auto" by the file's extension, after dropping a .gz, .zst or
// .zstd suffix, ignoring case: .csv, .tsv, .jsonl/.ndjson/.json, else text.
// Any other option is kInvalidArgument.
Result<InputFormat> ResolveInputFormat(std::string_view option, std::string_view path);

// What a parser found next.
enum class EntryKind {
  kEnd,       // the input is exhausted
  kItem,      // an item
  kRejected,  // a line (or CSV record) that could not be ingested
  kBlank,     // an empty or all-blank line
};

class InputParser {
 public:
  virtual ~InputParser() = default;

  // Reads the next entry. For kItem, *item holds it: its strings are overwritten,
  // keeping their capacity, so that a caller reusing ItemRows allocates nothing in
  // the steady state. For kRejected, *reject holds the reject.
  virtual Result<EntryKind> Next(ItemRow* item, RejectedLine* reject) = 0;

  // Skips the input's first `lines` lines without parsing them, to resume an
  // ingest; a CSV or TSV header is still read. Returns how many lines were skipped
  // in all (header included): fewer than `lines` only if the input is shorter.
  // REQUIRES: called before Next(); `lines` ends an entry (a lines_done value).
  virtual Result<std::uint64_t> SkipLines(std::uint64_t lines) = 0;

  // The number of input lines consumed so far. After Next() returned an entry, that
  // is the last line of the entry: what to record as InputState::lines_done.
  virtual std::uint64_t lines_consumed() const = 0;
};

// Returns a parser of `format` reading from `lines`, which must outlive it.
// `url_column` names the URL column (csv, tsv) or member (jsonl).
std::unique_ptr<InputParser> MakeInputParser(InputFormat format, std::string url_column,
                                             LineReader* lines);

// The reason recorded for a line longer than max_line_bytes:
// "line longer than 65536 bytes".
std::string LineTooLongReason(std::size_t max_line_bytes);

// Fills *reject for the line (or record) starting at line `line`, whose text starts
// with `text`; the excerpt is made from `text`.
void SetReject(std::uint64_t line, std::string_view reason, std::string_view text,
               RejectedLine* reject);

}  // namespace sluice

#endif  // SLUICE_INPUT_INPUT_FORMAT_H_
