// Fuzzes what ingest does with an input file, short of the store: bytes, gzip or zstd
// recognised by their magic (byte_source.h), lines (line_reader.h), then the text,
// CSV, TSV or JSONL parser (input_format.h, delimited_parser.h, json_line.h).
//
// The input is 4 parameter bytes, then the file's content:
//   [0] % 4: the format (text, csv, tsv, jsonl); (/ 4) % 3: how the content is
//       stored: as it is, its compression recognised by its magic bytes as ingest
//       does (corrupt gzip and zstd streams come this way), or gzip- or
//       zstd-compressed here (valid streams of fuzzed text); bit 7: the URL column
//       is "link" instead of "url".
//   [1] max_line_bytes: 1..255, or 0 for the default 65536.
//   [2] the most bytes a Read() returns in the piecewise parse (1..64).
//   [3] which entry to resume after; where the gzip stream is cut into two members.
//
// Checked:
//   - every item has a non-empty URL, valid text without surrounding blanks, and
//     columns that are "" or a JSON object of strings; every reject has a reason, a
//     printable excerpt and a line number within its entry; errors are the file's
//     own (corrupt stream, CSV header);
//   - reading the source in small pieces gives exactly what reading it whole gives
//     (for a corrupt zstd stream: the same error, after the same entries as far as
//     both went);
//   - resuming after an entry (SkipLines of its lines_consumed(), as ingest resumes)
//     gives exactly the entries that followed it;
//   - for text and JSONL, whose entries are lines, each line of the plain text is the
//     entry a simple model of line_reader.h predicts.
#include <fuzzer/FuzzedDataProvider.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/input/byte_source.h"
#include "src/input/input_format.h"
#include "src/input/json_line.h"
#include "src/input/line_reader.h"
#include "src/input/line_text.h"
#include "tests/fuzz/fuzz_check.h"

namespace sluice {
namespace {

// A few KiB of zstd can stand for gigabytes: a parse stops after this many
// decompressed bytes, or this many entries.
constexpr std::size_t kMaxDecompressedBytes = 1 << 20;
constexpr std::size_t kMaxEntries = 20000;
constexpr std::size_t kParamBytes = 4;

// Returns at most `piece` bytes per Read().
class PiecewiseSource final : public ByteSource {
 public:
  PiecewiseSource(std::string_view data, std::size_t piece)
      : data_(data), piece_(piece) {}
  Result<std::size_t> Read(std::span<char> out) override {
    const std::size_t n = std::min({out.size(), piece_, data_.size()});
    std::memcpy(out.data(), data_.data(), n);
    data_.remove_prefix(n);
    return n;
  }

 private:
  std::string_view data_;
  std::size_t piece_;
};

// Passes on at most `piece` bytes of `inner` per Read(), and ends the stream after
// kMaxDecompressedBytes.
class CappedSource final : public ByteSource {
 public:
  CappedSource(std::unique_ptr<ByteSource> inner, std::size_t piece)
      : inner_(std::move(inner)), piece_(piece) {}
  Result<std::size_t> Read(std::span<char> out) override {
    if (left_ == 0) return std::size_t{0};
    SLUICE_ASSIGN_OR_RETURN(
        const std::size_t n,
        inner_->Read(out.first(std::min({out.size(), piece_, left_}))));
    left_ -= n;
    return n;
  }

 private:
  std::unique_ptr<ByteSource> inner_;
  std::size_t piece_;
  std::size_t left_ = kMaxDecompressedBytes;
};

struct Setup {
  InputFormat format = InputFormat::kText;
  std::string url_column = "url";
  std::size_t max_line_bytes = 65536;
  std::string file;  // the file's bytes, compressed or not
};

struct Entry {
  EntryKind kind = EntryKind::kEnd;
  std::string url;           // kItem
  std::string columns_json;  // kItem
  std::uint64_t line = 0;    // kRejected
  std::string reason;        // kRejected
  std::string excerpt;       // kRejected
  std::uint64_t consumed = 0;
  bool operator==(const Entry&) const = default;
};

struct Outcome {
  std::uint64_t skipped = 0;
  std::vector<Entry> entries;
  bool capped = false;  // stopped after kMaxEntries
  StatusCode error_code = StatusCode::kOk;
  std::string error;
  std::uint64_t lines = 0;
};

// Parses setup.file as ingest does (see IngestFile), reading at most `piece` bytes at
// a time, after skipping `skip` lines.
Outcome Parse(const Setup& setup, std::size_t piece, std::uint64_t skip) {
  const Compression compression =
      DetectCompression(std::string_view(setup.file).substr(0, 4));
  auto raw = std::make_unique<PiecewiseSource>(setup.file, piece);
  LineReader lines(std::make_unique<CappedSource>(
                       OpenDecompressor(compression, std::move(raw)), piece),
                   setup.max_line_bytes);
  const std::unique_ptr<InputParser> parser =
      MakeInputParser(setup.format, setup.url_column, &lines);
  Outcome outcome;
  const auto fail = [&](const Status& status) {
    outcome.error_code = status.code();
    outcome.error = status.message();
    outcome.lines = parser->lines_consumed();
    return outcome;
  };
  if (skip > 0) {
    Result<std::uint64_t> skipped = parser->SkipLines(skip);
    if (!skipped.ok()) return fail(skipped.status());
    outcome.skipped = *skipped;
  }
  ItemRow item;
  RejectedLine reject;
  while (true) {
    if (outcome.entries.size() == kMaxEntries) {
      outcome.capped = true;
      break;
    }
    Result<EntryKind> kind = parser->Next(&item, &reject);
    if (!kind.ok()) return fail(kind.status());
    if (*kind == EntryKind::kEnd) break;
    Entry entry;
    entry.kind = *kind;
    if (*kind == EntryKind::kItem) {
      entry.url = item.url;
      entry.columns_json = item.columns_json;
    } else if (*kind == EntryKind::kRejected) {
      entry.line = reject.line;
      entry.reason = reject.reason;
      entry.excerpt = reject.excerpt;
    }
    entry.consumed = parser->lines_consumed();
    outcome.entries.push_back(std::move(entry));
  }
  outcome.lines = parser->lines_consumed();
  return outcome;
}

void CheckEntries(const Setup& setup, const Outcome& outcome) {
  std::uint64_t previous = outcome.skipped;
  for (const Entry& entry : outcome.entries) {
    SLUICE_FUZZ_CHECK(entry.consumed > previous);
    switch (entry.kind) {
      case EntryKind::kItem: {
        SLUICE_FUZZ_CHECK(!entry.url.empty());
        SLUICE_FUZZ_CHECK(CheckText(entry.url) == TextProblem::kNone);
        SLUICE_FUZZ_CHECK(TrimBlanks(entry.url) == entry.url);
        if (setup.format == InputFormat::kText) {
          SLUICE_FUZZ_CHECK(entry.columns_json.empty());
        }
        if (!entry.columns_json.empty()) {
          const auto columns = nlohmann::json::parse(entry.columns_json, nullptr, false);
          SLUICE_FUZZ_CHECK(columns.is_object() && !columns.empty());
          for (const auto& [name, value] : columns.items()) {
            SLUICE_FUZZ_CHECK(value.is_string());
            SLUICE_FUZZ_CHECK(name != setup.url_column);
          }
        }
        break;
      }
      case EntryKind::kRejected:
        SLUICE_FUZZ_CHECK(entry.line > previous && entry.line <= entry.consumed);
        SLUICE_FUZZ_CHECK(!entry.reason.empty());
        SLUICE_FUZZ_CHECK(CheckText(entry.excerpt) == TextProblem::kNone);
        SLUICE_FUZZ_CHECK(entry.excerpt.size() <= 4 * kExcerptBytes + 3);
        break;
      case EntryKind::kBlank:
        break;
      case EntryKind::kEnd:
        SLUICE_FUZZ_CHECK(false);
    }
    previous = entry.consumed;
  }
  SLUICE_FUZZ_CHECK(outcome.lines >= previous);
  if (outcome.error_code == StatusCode::kInvalidArgument) {
    // Only a CSV or TSV header fails a whole file.
    SLUICE_FUZZ_CHECK(setup.format == InputFormat::kCsv ||
                      setup.format == InputFormat::kTsv);
    SLUICE_FUZZ_CHECK(outcome.entries.empty() ||
                      outcome.entries.back().kind == EntryKind::kBlank);
  } else {
    SLUICE_FUZZ_CHECK(outcome.error_code == StatusCode::kOk ||
                      outcome.error_code == StatusCode::kCorruption);
  }
}

// zstd reports no output from a call that fails (see byte_source.h): on a corrupt
// zstd stream, how far a parse goes (up to the error, or to kMaxDecompressedBytes)
// depends on the sizes of the reads.
bool ReadSizesMatter(const Setup& setup, const Outcome& a, const Outcome& b) {
  return (a.error_code == StatusCode::kCorruption ||
          b.error_code == StatusCode::kCorruption) &&
         DetectCompression(std::string_view(setup.file).substr(0, 4)) ==
             Compression::kZstd;
}

void CheckSameOutcome(const Setup& setup, const Outcome& a, const Outcome& b) {
  if (ReadSizesMatter(setup, a, b)) {
    // The entries are the same as far as both parses went.
    const std::size_t n = std::min(a.entries.size(), b.entries.size());
    SLUICE_FUZZ_CHECK(
        std::equal(a.entries.begin(), a.entries.begin() + n, b.entries.begin()));
    return;
  }
  if (a.error != b.error) {
    std::fprintf(stderr, "errors differ:\n  %s\n  %s\n", a.error.c_str(),
                 b.error.c_str());
  }
  SLUICE_FUZZ_CHECK(a.error_code == b.error_code);
  SLUICE_FUZZ_CHECK(a.entries == b.entries);
  SLUICE_FUZZ_CHECK(a.capped == b.capped);
  SLUICE_FUZZ_CHECK(a.error == b.error);
  SLUICE_FUZZ_CHECK(a.lines == b.lines);
}

// Resuming after entries[index] yields the entries after it.
void CheckResume(const Setup& setup, const Outcome& whole, std::size_t index) {
  const std::uint64_t skip = whole.entries[index].consumed;
  const Outcome resumed = Parse(setup, kMaxDecompressedBytes, skip);
  const bool read_sizes_matter = ReadSizesMatter(setup, whole, resumed);
  SLUICE_FUZZ_CHECK(resumed.error_code == StatusCode::kOk ||
                    resumed.error_code == whole.error_code || read_sizes_matter);
  SLUICE_FUZZ_CHECK(resumed.skipped == skip || read_sizes_matter);
  const std::vector<Entry> tail(whole.entries.begin() + index + 1, whole.entries.end());
  if (whole.capped || resumed.capped || read_sizes_matter) {
    const std::size_t n = std::min(tail.size(), resumed.entries.size());
    SLUICE_FUZZ_CHECK(
        std::equal(tail.begin(), tail.begin() + n, resumed.entries.begin()));
    return;
  }
  SLUICE_FUZZ_CHECK(resumed.entries == tail);
  SLUICE_FUZZ_CHECK(resumed.error_code == whole.error_code);
  SLUICE_FUZZ_CHECK(resumed.error == whole.error);
  SLUICE_FUZZ_CHECK(resumed.lines == whole.lines);
}

// The entries of a text or JSONL file whose plain text is `text`, as line_reader.h
// and input_format.h describe them.
std::vector<Entry> ModelLineEntries(const Setup& setup, std::string_view text) {
  std::vector<Entry> entries;
  JsonLineParser json(setup.url_column);
  std::uint64_t number = 0;
  while (!text.empty() && entries.size() < kMaxEntries) {
    const std::size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text =
        newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    ++number;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (number == 1 && line.starts_with("\xef\xbb\xbf")) line.remove_prefix(3);
    Entry entry;
    entry.consumed = number;
    const auto reject = [&](std::string_view reason, std::string_view shown) {
      entry.kind = EntryKind::kRejected;
      entry.line = number;
      entry.reason = reason;
      entry.excerpt = MakeExcerpt(shown);
    };
    const TextProblem problem = CheckText(line);
    if (line.size() > setup.max_line_bytes) {
      reject(LineTooLongReason(setup.max_line_bytes),
             line.substr(0, LineReader::kLongLinePrefixBytes));
    } else if (problem != TextProblem::kNone) {
      reject(TextProblemReason(problem), line);
    } else if (TrimBlanks(line).empty()) {
      entry.kind = EntryKind::kBlank;
    } else if (setup.format == InputFormat::kText) {
      entry.kind = EntryKind::kItem;
      entry.url = TrimBlanks(line);
    } else {
      ItemRow item;
      const std::string_view why = json.Parse(line, &item);
      if (why.empty()) {
        entry.kind = EntryKind::kItem;
        entry.url = item.url;
        entry.columns_json = item.columns_json;
      } else {
        reject(why, line);
      }
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::string Gzip(std::string_view data) {
  z_stream stream{};
  if (deflateInit2(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    std::abort();
  }
  std::string out(deflateBound(&stream, static_cast<uLong>(data.size())) + 64, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  SLUICE_FUZZ_CHECK(deflate(&stream, Z_FINISH) == Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

std::string Zstd(std::string_view data) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 1);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  std::string out(ZSTD_compressBound(data.size()), '\0');
  const std::size_t n =
      ZSTD_compress2(cctx, out.data(), out.size(), data.data(), data.size());
  ZSTD_freeCCtx(cctx);
  SLUICE_FUZZ_CHECK(!ZSTD_isError(n));
  out.resize(n);
  return out;
}

}  // namespace
}  // namespace sluice

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  if (size < kParamBytes) return -1;
  const std::uint8_t* params = data;
  const std::string_view content(reinterpret_cast<const char*>(data) + kParamBytes,
                                 size - kParamBytes);

  Setup setup;
  setup.format = static_cast<InputFormat>(params[0] % 4);
  const int storage = (params[0] / 4) % 3;
  if ((params[0] & 0x80) != 0) setup.url_column = "link";
  setup.max_line_bytes = params[1] == 0 ? 65536 : params[1];
  const std::size_t piece = 1 + params[2] % 64;

  // The plain text, when it is known.
  std::optional<std::string_view> text;
  if (storage == 0) {
    setup.file = content;
    if (DetectCompression(content.substr(0, 4)) == Compression::kNone) text = content;
  } else if (storage == 1) {
    // Two gzip members, read as one stream.
    const std::size_t cut = content.size() * params[3] / 256;
    setup.file = Gzip(content.substr(0, cut)) + Gzip(content.substr(cut));
    text = content;
  } else {
    setup.file = Zstd(content);
    text = content;
  }

  const Outcome whole = Parse(setup, kMaxDecompressedBytes, 0);
  CheckEntries(setup, whole);
  const Outcome piecewise = Parse(setup, piece, 0);
  CheckSameOutcome(setup, whole, piecewise);

  std::vector<std::size_t> resumable;
  for (std::size_t i = 0; i < whole.entries.size(); ++i) {
    if (whole.entries[i].kind != EntryKind::kBlank) resumable.push_back(i);
  }
  if (!resumable.empty()) {
    CheckResume(setup, whole, resumable[params[3] % resumable.size()]);
  }

  if (text.has_value() &&
      (setup.format == InputFormat::kText || setup.format == InputFormat::kJsonl)) {
    const std::vector<Entry> model = ModelLineEntries(setup, *text);
    SLUICE_FUZZ_CHECK(whole.error_code == StatusCode::kOk);
    const std::size_t n = std::min(model.size(), whole.entries.size());
    SLUICE_FUZZ_CHECK(
        std::equal(model.begin(), model.begin() + n, whole.entries.begin()));
    if (!whole.capped) SLUICE_FUZZ_CHECK(model.size() == whole.entries.size());
  }
  return 0;
}
