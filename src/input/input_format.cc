#include "src/input/input_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "src/input/delimited_parser.h"
#include "src/input/json_line.h"
#include "src/input/line_text.h"

namespace sluice {
namespace {

std::string ToLower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool RemoveSuffix(std::string& text, std::string_view suffix) {
  if (!std::string_view(text).ends_with(suffix)) return false;
  text.resize(text.size() - suffix.size());
  return true;
}

// Reads one line and sorts out what every line-based format rejects: too long, not
// text, blank. Returns kItem when `line` holds a non-blank line to parse further.
Result<EntryKind> ReadCheckedLine(LineReader* lines, const std::string& too_long_reason,
                                  LineReader::Line* line, RejectedLine* reject) {
  SLUICE_ASSIGN_OR_RETURN(const bool more, lines->Next(line));
  if (!more) return EntryKind::kEnd;
  if (line->too_long) {
    SetReject(line->number, too_long_reason, line->text, reject);
    return EntryKind::kRejected;
  }
  if (const TextProblem problem = CheckText(line->text); problem != TextProblem::kNone) {
    SetReject(line->number, TextProblemReason(problem), line->text, reject);
    return EntryKind::kRejected;
  }
  if (TrimBlanks(line->text).empty()) return EntryKind::kBlank;
  return EntryKind::kItem;
}

// A parser that makes one entry of each input line.
class LineParser : public InputParser {
 public:
  explicit LineParser(LineReader* lines)
      : lines_(lines), too_long_reason_(LineTooLongReason(lines->max_line_bytes())) {}

  Result<std::uint64_t> SkipLines(std::uint64_t lines) override {
    return lines_->Skip(lines);
  }

  std::uint64_t lines_consumed() const override { return lines_->lines_read(); }

 protected:
  // Reads the next line: kItem when it is a candidate (checked, not blank).
  Result<EntryKind> ReadLine(LineReader::Line* line, RejectedLine* reject) {
    return ReadCheckedLine(lines_, too_long_reason_, line, reject);
  }

 private:
  LineReader* lines_;
  const std::string too_long_reason_;
};

class TextParser final : public LineParser {
 public:
  explicit TextParser(LineReader* lines) : LineParser(lines) {}

  Result<EntryKind> Next(ItemRow* item, RejectedLine* reject) override {
    LineReader::Line line;
    SLUICE_ASSIGN_OR_RETURN(const EntryKind kind, ReadLine(&line, reject));
    if (kind != EntryKind::kItem) return kind;
    item->url.assign(TrimBlanks(line.text));
    item->columns_json.clear();
    return EntryKind::kItem;
  }
};

class JsonlParser final : public LineParser {
 public:
  JsonlParser(std::string url_member, LineReader* lines)
      : LineParser(lines), json_(std::move(url_member)) {}

  Result<EntryKind> Next(ItemRow* item, RejectedLine* reject) override {
    LineReader::Line line;
    SLUICE_ASSIGN_OR_RETURN(const EntryKind kind, ReadLine(&line, reject));
    if (kind != EntryKind::kItem) return kind;
    const std::string_view problem = json_.Parse(line.text, item);
    if (problem.empty()) return EntryKind::kItem;
    SetReject(line.number, problem, line.text, reject);
    return EntryKind::kRejected;
  }

 private:
  JsonLineParser json_;
};

}  // namespace

std::string_view InputFormatName(InputFormat format) {
  switch (format) {
    case InputFormat::kText:
      return "text";
    case InputFormat::kCsv:
      return "csv";
    case InputFormat::kTsv:
      return "tsv";
    case InputFormat::kJsonl:
      return "jsonl";
  }
  return "unknown";
}

Result<InputFormat> ResolveInputFormat(std::string_view option, std::string_view path) {
  if (option == "text") return InputFormat::kText;
  if (option == "csv") return InputFormat::kCsv;
  if (option == "tsv") return InputFormat::kTsv;
  if (option == "jsonl") return InputFormat::kJsonl;
  if (option != "auto") {
    return InvalidArgument(fmt::format(
        "unknown input format '{}' (expected auto, text, csv, tsv or jsonl)", option));
  }
  const std::size_t slash = path.find_last_of('/');
  std::string name =
      ToLower(slash == std::string_view::npos ? path : path.substr(slash + 1));
  for (const std::string_view suffix : {".gz", ".zst", ".zstd"}) {
    if (RemoveSuffix(name, suffix)) break;
  }
  const std::string_view stem(name);
  if (stem.ends_with(".csv")) return InputFormat::kCsv;
  if (stem.ends_with(".tsv")) return InputFormat::kTsv;
  if (stem.ends_with(".jsonl") || stem.ends_with(".ndjson") || stem.ends_with(".json")) {
    return InputFormat::kJsonl;
  }
  return InputFormat::kText;
}

std::unique_ptr<InputParser> MakeInputParser(InputFormat format, std::string url_column,
                                             LineReader* lines) {
  switch (format) {
    case InputFormat::kText:
      return std::make_unique<TextParser>(lines);
    case InputFormat::kCsv:
      return std::make_unique<DelimitedParser>(DelimitedParser::Dialect::kCsv,
                                               std::move(url_column), lines);
    case InputFormat::kTsv:
      return std::make_unique<DelimitedParser>(DelimitedParser::Dialect::kTsv,
                                               std::move(url_column), lines);
    case InputFormat::kJsonl:
      return std::make_unique<JsonlParser>(std::move(url_column), lines);
  }
  return nullptr;
}

std::string LineTooLongReason(std::size_t max_line_bytes) {
  return fmt::format("line longer than {} bytes", max_line_bytes);
}

void SetReject(std::uint64_t line, std::string_view reason, std::string_view text,
               RejectedLine* reject) {
  reject->line = line;
  reject->reason.assign(reason);
  reject->excerpt = MakeExcerpt(text);
}

}  // namespace sluice
