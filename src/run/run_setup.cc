#include "src/run/run_setup.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>

#include "src/input/ingest.h"

namespace sluice {
namespace {

constexpr int kMaxRejectsShown = 10;

}  // namespace

Result<std::vector<ConfigOverride>> ParseOverrides(const std::vector<std::string>& sets) {
  std::vector<ConfigOverride> overrides;
  for (const std::string& text : sets) {
    SLUICE_ASSIGN_OR_RETURN(ConfigOverride parsed, ParseOverride(text));
    overrides.push_back(std::move(parsed));
  }
  return overrides;
}

Result<PipelineConfig> LoadPipelineWithSets(const std::string& path,
                                            const std::vector<std::string>& sets,
                                            const StageRegistry& registry) {
  SLUICE_ASSIGN_OR_RETURN(std::vector<ConfigOverride> overrides, ParseOverrides(sets));
  return LoadPipelineFile(path, overrides, registry);
}

std::string WorkdirStorePath(const std::string& workdir) {
  return (std::filesystem::path(workdir) / "sluice.db").string();
}

Status IngestInputs(Store& store, const PipelineConfig& config,
                    const std::vector<std::string>& inputs, bool quiet,
                    const RunLog& log) {
  IngestOptions options;
  options.format = config.input.format;
  options.url_column = config.input.url_column;
  options.batch_size = config.batch_size;
  options.max_line_bytes = config.input.max_line_bytes;
  options.groups = config.GroupNames();
  Status first_error;
  for (const std::string& path : inputs) {
    Result<IngestReport> report = IngestFile(store, path, options);
    if (!report.ok()) {
      log.Error(report.status());
      if (first_error.ok()) first_error = report.status();
      continue;
    }
    if (report->already_ingested) {
      if (!quiet) log.Info(fmt::format("input {}: already ingested", path));
      continue;
    }
    log.Info(fmt::format("input {}: {} items{}, {} rejected lines, {} blank lines", path,
                         report->items, report->resumed ? " (resumed)" : "",
                         report->rejected, report->blank));
    if (report->items == 0 && report->rejected == 0) {
      log.Info(
          fmt::format("input {}: no items ({})", path,
                      report->lines == 0 ? "the file is empty" : "only blank lines"));
    }
    if (report->rejected > 0) {
      int shown = 0;
      std::string rejects = fmt::format("input {}: rejected lines:", path);
      Status listed = store.ListRejects(
          [&](std::string_view reject_path, const RejectedLine& reject) -> Status {
            if (reject_path != path) return Status::Ok();
            if (shown++ == kMaxRejectsShown) return Cancelled("enough");
            rejects += fmt::format("\n  {}:{}: {}: {}", path, reject.line, reject.reason,
                                   reject.excerpt);
            return Status::Ok();
          });
      if (report->rejected > kMaxRejectsShown) {
        rejects +=
            fmt::format("\n  ... {} more; every rejected line is kept in the store",
                        report->rejected - kMaxRejectsShown);
      }
      if (shown > 0) log.Warning(rejects);
      // Cancelled is how the callback stops after kMaxRejectsShown; any other error
      // (the store could not be read) is told, though the items were ingested.
      if (!listed.ok() && listed.code() != StatusCode::kCancelled) {
        log.Warning(fmt::format("input {}: could not list the rejected lines: {}", path,
                                listed.ToString()));
      }
    }
  }
  return first_error;
}

Status BindPipeline(Store& store, const PipelineConfig& config,
                    const std::string& where) {
  SLUICE_ASSIGN_OR_RETURN(std::optional<std::string> stored,
                          store.GetMeta("pipeline_fingerprint"));
  const std::string groups = fmt::format("{}", fmt::join(config.GroupNames(), ","));
  if (!stored) {
    SLUICE_RETURN_IF_ERROR(store.SetMeta("pipeline_name", config.name));
    SLUICE_RETURN_IF_ERROR(store.SetMeta(kGroupsMeta, groups));
    return store.SetMeta("pipeline_fingerprint", config.fingerprint);
  }
  if (*stored == config.fingerprint) {
    // Stores made before the groups were recorded get them now.
    SLUICE_ASSIGN_OR_RETURN(std::optional<std::string> known, store.GetMeta(kGroupsMeta));
    if (!known) SLUICE_RETURN_IF_ERROR(store.SetMeta(kGroupsMeta, groups));
    return Status::Ok();
  }
  return InvalidArgument(fmt::format(
      "{} holds a run of a pipeline with other stages, batch size or input "
      "settings (fingerprint {}, this one {}); resume with the same pipeline and --set "
      "values, or use a new {}",
      where, *stored, config.fingerprint,
      where.starts_with("--store") ? "store" : "--workdir"));
}

Result<std::vector<std::string>> StoredGroups(Store& store) {
  SLUICE_ASSIGN_OR_RETURN(std::optional<std::string> known, store.GetMeta(kGroupsMeta));
  std::vector<std::string> groups;
  if (!known || known->empty()) return std::vector<std::string>{"main"};
  std::size_t start = 0;
  while (start <= known->size()) {
    const std::size_t comma = std::min(known->find(',', start), known->size());
    groups.push_back(known->substr(start, comma - start));
    start = comma + 1;
  }
  return groups;
}

}  // namespace sluice
