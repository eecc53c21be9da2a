#include "src/input/ingest.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <span>
#include <utility>

#include "src/input/byte_source.h"
#include "src/input/fingerprint.h"
#include "src/input/input_format.h"
#include "src/input/line_reader.h"

namespace sluice {
namespace {

Status ValidateOptions(const IngestOptions& options) {
  if (options.batch_size == 0) {
    return InvalidArgument("input.batch_size must be at least 1");
  }
  if (options.max_line_bytes == 0 || options.max_line_bytes > kMaxLineBytesLimit) {
    return InvalidArgument(
        fmt::format("input.max_line_bytes must be between 1 and {}", kMaxLineBytesLimit));
  }
  if (options.groups.empty()) {
    return InvalidArgument("no stage group to make batches for");
  }
  if (options.url_column.empty()) return InvalidArgument("input.url_column is empty");
  return Status::Ok();
}

// Appends items and rejects to the store in batch-sized calls; one per IngestFile.
class BatchWriter {
 public:
  BatchWriter(Store& store, std::int64_t input_id, const IngestOptions& options,
              IngestReport* report,
              const std::function<void(const IngestReport&)>& progress)
      : store_(store),
        input_id_(input_id),
        options_(options),
        report_(report),
        progress_(progress) {}

  // The row the next item is parsed into. Rows are reused from batch to batch, so
  // that their strings keep their capacity.
  ItemRow* NextRow() {
    if (pending_items_ == rows_.size()) rows_.emplace_back();
    return &rows_[pending_items_];
  }

  // Takes the row NextRow() returned as an item. `lines_done` ends it.
  Status AddItem(std::uint64_t lines_done) {
    ++pending_items_;
    ++report_->items;
    if (pending_items_ == options_.batch_size) return Flush(lines_done);
    return Status::Ok();
  }

  Status AddReject(RejectedLine reject, std::uint64_t lines_done) {
    rejects_.push_back(std::move(reject));
    ++report_->rejected;
    if (rejects_.size() >= kMaxPendingRejects) return Flush(lines_done);
    return Status::Ok();
  }

  // Appends what is pending, if anything, recording `lines_done`.
  Status Flush(std::uint64_t lines_done) {
    if (pending_items_ == 0 && rejects_.empty()) return Status::Ok();
    SLUICE_RETURN_IF_ERROR(store_.AppendItems(
        input_id_, std::span<const ItemRow>(rows_.data(), pending_items_), rejects_,
        lines_done, options_.batch_size, options_.groups));
    pending_items_ = 0;
    rejects_.clear();
    if (progress_) progress_(*report_);
    return Status::Ok();
  }

 private:
  Store& store_;
  const std::int64_t input_id_;
  const IngestOptions& options_;
  IngestReport* report_;
  const std::function<void(const IngestReport&)>& progress_;
  std::vector<ItemRow> rows_;  // rows_[0, pending_items_) are waiting to be appended
  std::size_t pending_items_ = 0;
  std::vector<RejectedLine> rejects_;
};

Result<IngestReport> Ingest(Store& store, const std::string& path,
                            const IngestOptions& options,
                            const std::function<void(const IngestReport&)>& progress) {
  SLUICE_RETURN_IF_ERROR(ValidateOptions(options));
  SLUICE_ASSIGN_OR_RETURN(const InputFormat format,
                          ResolveInputFormat(options.format, path));
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<FileSource> file, FileSource::Open(path));
  SLUICE_ASSIGN_OR_RETURN(const InputFingerprint fingerprint,
                          FingerprintFile(*file, path));

  IngestReport report;
  report.path = path;
  SLUICE_ASSIGN_OR_RETURN(const InputState state, store.BeginInput(fingerprint));
  if (state.complete) {
    report.already_ingested = true;
    report.skipped_lines = state.lines_done;
    return report;
  }

  char head[4] = {};
  const std::size_t head_size = std::min<std::uint64_t>(sizeof(head), file->size());
  SLUICE_RETURN_IF_ERROR(file->ReadAt(0, std::span<char>(head, head_size)));
  const Compression compression = DetectCompression(std::string_view(head, head_size));
  LineReader lines(OpenDecompressor(compression, std::move(file)),
                   options.max_line_bytes);
  const std::unique_ptr<InputParser> parser =
      MakeInputParser(format, options.url_column, &lines);

  if (state.lines_done > 0) {
    report.resumed = true;
    SLUICE_ASSIGN_OR_RETURN(const std::uint64_t skipped,
                            parser->SkipLines(state.lines_done));
    if (skipped < state.lines_done) {
      return Corruption(fmt::format(
          "the store says {} lines were ingested, but the file has only {}; was it "
          "changed in place?",
          state.lines_done, skipped));
    }
    report.skipped_lines = skipped;
  }

  BatchWriter writer(store, state.input_id, options, &report, progress);
  RejectedLine reject;
  while (true) {
    SLUICE_ASSIGN_OR_RETURN(const EntryKind kind,
                            parser->Next(writer.NextRow(), &reject));
    if (kind == EntryKind::kEnd) break;
    report.lines = parser->lines_consumed() - report.skipped_lines;
    switch (kind) {
      case EntryKind::kItem:
        SLUICE_RETURN_IF_ERROR(writer.AddItem(parser->lines_consumed()));
        break;
      case EntryKind::kRejected:
        SLUICE_RETURN_IF_ERROR(
            writer.AddReject(std::move(reject), parser->lines_consumed()));
        reject = RejectedLine();
        break;
      case EntryKind::kBlank:
        ++report.blank;
        break;
      case EntryKind::kEnd:
        break;
    }
  }
  // The lines a CSV header took are consumed even when no entry followed.
  const std::uint64_t lines_done = parser->lines_consumed();
  report.lines = lines_done - report.skipped_lines;
  SLUICE_RETURN_IF_ERROR(writer.Flush(lines_done));
  SLUICE_RETURN_IF_ERROR(store.FinishInput(state.input_id, lines_done));
  return report;
}

}  // namespace

Result<IngestReport> IngestFile(
    Store& store, const std::string& path, const IngestOptions& options,
    const std::function<void(const IngestReport&)>& progress) {
  Result<IngestReport> report = Ingest(store, path, options, progress);
  if (!report.ok()) return report.status().WithContext("input " + path);
  return report;
}

}  // namespace sluice
