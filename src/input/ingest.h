// Ingest: turning an input file into items of a Store.
//
// IngestFile() fingerprints the file (fingerprint.h) and asks the store where its
// ingest stands. A file already ingested completely, under any name, is left alone.
// Otherwise the file is streamed from its start (decompressed if it is gzip or
// zstd, see byte_source.h), the lines an earlier, interrupted run committed are
// skipped, and the rest is parsed (input_format.h) and appended to the store in
// calls of exactly batch_size items, so that every store batch but the input's last
// is full. Each call is one store transaction that also records the rejects seen
// since the previous call and the number of lines consumed: a crash at any instant
// loses at most the call in progress, and the next run resumes after the last
// committed line, giving the remaining items the ids a single pass would have.
//
// Memory is constant whatever the file's size: the read buffers, one batch of
// ItemRows, and the rejects of one batch. On garbage input with more than
// kMaxPendingRejects rejects between two items, the pending items are appended
// early as a shorter batch, so that the rejects do not pile up in memory.
//
// Errors name the file: "input urls.txt: cannot open: No such file or directory",
// "input urls.txt.gz: line 678: gzip stream is corrupt after 12345 decompressed
// bytes: unexpected end of file", "input photos.csv: no column named 'url' in the
// header (columns: link, caption); set input.url_column". What was appended before
// an error stays appended; the next run resumes after it.
//
// IngestFile is thread-safe as far as the Store is (it keeps no state of its own),
// but two ingests of the same file at once would append it twice: callers ingest
// each input from one thread.
#ifndef SLUICE_INPUT_INGEST_H_
#define SLUICE_INPUT_INGEST_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sluice/status.h"
#include "sluice/store.h"

namespace sluice {

// How to ingest one file (the `input` section of a pipeline).
struct IngestOptions {
  // auto (by extension, see ResolveInputFormat), text, csv, tsv or jsonl.
  std::string format = "auto";
  // The CSV/TSV column, or JSONL member, that holds the URL.
  std::string url_column = "url";
  // Items per store batch (and per AppendItems call); at least 1.
  std::uint32_t batch_size = 1000;
  // Longer lines (and CSV records) are rejected; between 1 and kMaxLineBytesLimit.
  std::size_t max_line_bytes = 65536;
  // The stage groups the items' batches are made for, in pipeline order; not empty.
  std::vector<std::string> groups = {"main"};
};

// The largest max_line_bytes accepted: the read buffer is about twice as large.
inline constexpr std::size_t kMaxLineBytesLimit = std::size_t{64} << 20;

// Rejects held in memory before they are written without waiting for a full batch.
inline constexpr std::size_t kMaxPendingRejects = 4096;

// What one IngestFile call did. Counts cover this call only: on resume, the lines an
// earlier run ingested are in skipped_lines, not in the other counts.
struct IngestReport {
  std::string path;
  bool already_ingested = false;    // complete before this call; nothing was read
  bool resumed = false;             // an earlier run had ingested part of the file
  std::uint64_t lines = 0;          // lines read (header and all), skipped ones excluded
  std::uint64_t items = 0;          // items appended
  std::uint64_t rejected = 0;       // lines (or CSV records) rejected
  std::uint64_t blank = 0;          // blank lines
  std::uint64_t skipped_lines = 0;  // lines ingested by earlier runs, skipped
};

// Ingests the file at `path` into `store`. `progress`, if set, is called after each
// AppendItems call with the counts so far. Returns the report, or an error naming the
// file: the file cannot be opened or read, its compressed stream is corrupt, its
// header lacks the URL column, an option is invalid, or the store failed.
// An empty file, or one without a single item, is not an error.
Result<IngestReport> IngestFile(
    Store& store, const std::string& path, const IngestOptions& options,
    const std::function<void(const IngestReport&)>& progress = {});

}  // namespace sluice

#endif  // SLUICE_INPUT_INGEST_H_
