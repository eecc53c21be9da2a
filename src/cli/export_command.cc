// `sluice export (--workdir DIR | --store URL) [--format jsonl|csv] [--output FILE]`:
// one row per item, in id order: id, url, status (ok, failed, or pending if not
// processed yet), reason, error, the fields stages produced, and the item's extra
// input columns (JSONL: an "input" object; CSV: "input.NAME" columns).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "src/cli/command.h"
#include "src/cli/pipeline_setup.h"
#include "src/cli/workdir.h"
#include "src/core/result_json.h"

namespace sluice::cli {
namespace {

struct ExportFlags {
  std::string workdir;
  std::string store;
  std::string group;  // "": the pipeline's last stage group
  std::string format = "jsonl";
  std::string output;  // "" = stdout
};

std::string_view StatusName(const ExportRow& row) {
  if (!row.has_result) return "pending";
  if (row.reason == FailureReason::kFiltered) return "filtered";
  return row.reason == FailureReason::kNone ? "ok" : "failed";
}

OrderedJson ParseObject(const std::string& text) {
  if (text.empty()) return OrderedJson::object();
  OrderedJson parsed = OrderedJson::parse(text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_object() ? parsed : OrderedJson::object();
}

std::string CsvCell(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

std::string CellText(const OrderedJson& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return DumpJson(value);
}

class Output {
 public:
  Status Open(const std::string& path) {
    path_ = path;
    if (path.empty()) {
      file_ = stdout;
      return Status::Ok();
    }
    temp_ = path + ".tmp";
    file_ = std::fopen(temp_.c_str(), "wb");
    if (file_ == nullptr) {
      return IoError(
          fmt::format("--output {}: cannot create: {}", temp_, std::strerror(errno)));
    }
    return Status::Ok();
  }
  void Write(std::string_view text) { std::fwrite(text.data(), 1, text.size(), file_); }
  // Flushes and, for a file, renames it into place so readers never see half of it.
  Status Close() {
    bool failed = std::fflush(file_) != 0 || std::ferror(file_) != 0;
    if (file_ != stdout) {
      failed = std::fclose(file_) != 0 || failed;
      file_ = nullptr;
      if (!failed) {
        std::error_code error;
        std::filesystem::rename(temp_, path_, error);
        if (error) return IoError(fmt::format("--output {}: {}", path_, error.message()));
      }
    }
    if (failed) return IoError(fmt::format("export: write to {} failed", Name()));
    return Status::Ok();
  }
  ~Output() {
    if (file_ != nullptr && file_ != stdout) {
      std::fclose(file_);
      std::remove(temp_.c_str());
    }
  }

 private:
  std::string Name() const { return path_.empty() ? "standard output" : path_; }
  std::string path_;
  std::string temp_;
  std::FILE* file_ = nullptr;
};

Status ExportJsonl(Store& store, const std::string& group, Output& out) {
  return store.ExportRows(group, [&](const ExportRow& row) -> Status {
    OrderedJson line = {{"id", row.id},
                        {"url", row.url},
                        {"status", StatusName(row)},
                        {"reason", FailureReasonName(row.reason)},
                        {"error", row.error}};
    OrderedJson produced = ParseObject(row.fields_json);
    for (auto& [name, value] : produced.items()) line[ResultFieldKey(name)] = value;
    OrderedJson input = ParseObject(row.columns_json);
    if (!input.empty()) line["input"] = std::move(input);
    out.Write(DumpJson(line));
    out.Write("\n");
    return Status::Ok();
  });
}

Status ExportCsv(Store& store, const std::string& group, Output& out) {
  // First pass: the columns. Fields and input columns vary per item: each in the
  // order it first appears (for fields, the order the stages wrote them, as in the
  // metadata lines and the JSONL export).
  std::vector<std::string> fields;
  std::vector<std::string> inputs;
  std::set<std::string, std::less<>> seen_fields;
  std::set<std::string, std::less<>> seen_inputs;
  SLUICE_RETURN_IF_ERROR(store.ExportRows(group, [&](const ExportRow& row) -> Status {
    // Named, not temporaries: items() refers to the object it iterates.
    OrderedJson produced = ParseObject(row.fields_json);
    OrderedJson columns = ParseObject(row.columns_json);
    for (auto& [name, value] : produced.items()) {
      if (seen_fields.insert(name).second) fields.push_back(name);
    }
    for (auto& [name, value] : columns.items()) {
      if (seen_inputs.insert(name).second) inputs.push_back(name);
    }
    return Status::Ok();
  }));
  std::string header = "id,url,status,reason,error";
  for (const std::string& name : fields) header += "," + CsvCell(ResultFieldKey(name));
  for (const std::string& name : inputs) header += "," + CsvCell("input." + name);
  out.Write(header + "\n");
  return store.ExportRows(group, [&](const ExportRow& row) -> Status {
    std::string line =
        fmt::format("{},{},{},{},{}", row.id, CsvCell(row.url), StatusName(row),
                    FailureReasonName(row.reason), CsvCell(row.error));
    OrderedJson produced = ParseObject(row.fields_json);
    for (const std::string& name : fields) {
      line += ',';
      if (produced.contains(name)) line += CsvCell(CellText(produced[name]));
    }
    OrderedJson columns = ParseObject(row.columns_json);
    for (const std::string& name : inputs) {
      line += ',';
      if (columns.contains(name)) line += CsvCell(CellText(columns[name]));
    }
    out.Write(line + "\n");
    return Status::Ok();
  });
}

int Export(const ExportFlags& flags) {
  int exit_code = kExitOk;
  std::unique_ptr<Store> store = OpenStoreOfFlags(flags.workdir, flags.store, &exit_code);
  if (store == nullptr) return exit_code;
  // The last group's results are the pipeline's: each group carries the fields and
  // failures of those before it.
  std::string group = flags.group;
  if (group.empty()) {
    Result<std::vector<std::string>> groups = StoredGroups(*store);
    if (!groups.ok()) {
      PrintError(groups.status());
      return kExitFailure;
    }
    group = groups->back();
  }
  Output out;
  Status status = out.Open(flags.output);
  if (status.ok()) {
    status = flags.format == "csv" ? ExportCsv(*store, group, out)
                                   : ExportJsonl(*store, group, out);
  }
  if (status.ok()) status = out.Close();
  if (!status.ok()) {
    PrintError(status);
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

Command ExportCommandRow() {
  return Command{
      "export", "Write one row per item: status, reason and produced fields",
      [](std::vector<Flag>& flags) -> CommandRun {
        auto f = std::make_shared<ExportFlags>();
        flags.push_back(WorkdirFlag(&f->workdir, "The run's directory (unless --store)",
                                    /*required=*/false));
        flags.push_back(StoreFlag(&f->store));
        flags.push_back({.names = "--format,-f",
                         .help = "jsonl or csv",
                         .target = &f->format,
                         .one_of = {"jsonl", "csv"}});
        flags.push_back({.names = "--output,-o",
                         .help = "File to write (atomically); standard output if absent",
                         .target = &f->output});
        flags.push_back(GroupFlag(
            &f->group, "Stage group whose results to write (default: the last one)"));
        return [f] { return Export(*f); };
      }};
}

}  // namespace sluice::cli
