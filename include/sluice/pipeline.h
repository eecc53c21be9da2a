// Running a pipeline from a program of one's own: what `sluice run` does, as a
// library call.
//
//   sluice::StageRegistry registry;
//   SLUICE_RETURN_IF_ERROR(sluice::RegisterAllStages(registry));
//   SLUICE_RETURN_IF_ERROR(registry.Register("my_stage", "what it does", MakeMyStage));
//   SLUICE_ASSIGN_OR_RETURN(sluice::Pipeline pipeline,
//                           sluice::Pipeline::Load("pipeline.yaml", registry));
//   sluice::RunOptions options;
//   options.inputs = {"urls.txt"};
//   options.workdir = "out";
//   SLUICE_ASSIGN_OR_RETURN(sluice::RunSummary summary, pipeline.Run(options));
//
// A run keeps its state in the workdir's SQLite store (<workdir>/sluice.db), as `sluice
// run --workdir` does: the same call again resumes where the last one stopped, and on
// a finished workdir does nothing. The workdir can be read with the `sluice` command
// too (`sluice status`, `sluice export`). docs/library.md tells how to write a stage.
//
// Thread-safety: a Pipeline is immutable once loaded; Run() may be called from any
// thread, but two runs on the same workdir at once share its batches (as two `sluice
// worker` processes do), which is rarely what a program wants.
#ifndef SLUICE_PIPELINE_H_
#define SLUICE_PIPELINE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/stage.h"
#include "sluice/status.h"
#include "sluice/store.h"

namespace sluice {

// Registers every stage type sluice ships (noop, sleep, fail, filter, fetch, decode,
// resize, encode, faces, exec, sha256, ...), with the decoders of their payloads: the
// names `sluice` itself knows. A name already in `registry` is refused
// (InvalidArgument) and the stages after it are not registered; register stages of
// one's own after this call, under other names. What stages log (an exec
// subprocess's stderr lines) goes to `log`, or to standard error when it is empty.
Status RegisterAllStages(StageRegistry& registry, StageLog log = {});

// Where Run() tells what it does, a line at a time ("input urls.txt: 3 items, ...").
// Called from the thread of Run() and from the worker's threads, one call at a time
// per line but not serialised between threads: a sink that writes to one stream must
// be thread-safe (fprintf to stderr is).
using RunLogSink = std::function<void(std::string_view line)>;

// How to run a pipeline (per call; the pipeline's own settings are in its YAML).
struct RunOptions {
  // Input files to ingest before processing (text, csv, tsv or jsonl, optionally .gz
  // or .zst), as `sluice run --input`. A file ingested before, under any name, is
  // not ingested again. Empty: process what the workdir's store already holds.
  std::vector<std::string> inputs;
  // The run's directory, created if missing: the SQLite store (sluice.db), the
  // outputs (output/, unless the pipeline's output.dir says otherwise) and, with
  // stage groups, the blobs passed between them (blobs/, unless blobs.dir). Required.
  std::string workdir;
  // Progress and information lines; unset: dropped.
  RunLogSink info;
  // Warnings (a rejected input line, a retried store operation, a stall); unset:
  // dropped.
  RunLogSink warning;
};

// What a finished (or stopped) run leaves in the store, for the pipeline's last
// stage group (whose results are the pipeline's).
struct RunSummary {
  std::uint64_t items = 0;      // items in the store, ingested by this run or before
  std::uint64_t processed = 0;  // items this call committed
  std::uint64_t ok = 0;         // items with an ok result
  std::uint64_t failed = 0;     // items that failed
  std::uint64_t filtered = 0;   // items a filter dropped (not failures)
  std::map<std::string, std::uint64_t> failures;  // failure reason name -> items
  std::uint64_t rejected_lines = 0;  // input lines that could not be ingested
  std::string output_dir;            // where the outputs were written; "" when none are
};

// A pipeline loaded from YAML (docs/operators.md, pipelines/examples/), its stages
// checked against a registry.
class Pipeline {
 public:
  // Loads the pipeline file `path`. `sets` are `--set` overrides ("KEY=VALUE", e.g.
  // "batch_size=100" or "stages.wait.ms=5"), applied before validation.
  // REQUIRES: `registry` outlives the Pipeline (Run() builds its stages from it), and
  // is not changed while the Pipeline is used.
  // Errors: IoError when the file cannot be read; InvalidArgument for a malformed
  // override, YAML that is not valid, an unknown key or stage type, or a stage's
  // invalid options, every one named by its file and YAML path
  // ("p.yaml: stages[0] (wait).ms: expected an integer, got 'x'"), one per line.
  static Result<Pipeline> Load(const std::string& path, const StageRegistry& registry,
                               const std::vector<std::string>& sets = {});
  // The same from YAML text; `source` names it in messages in place of a path.
  static Result<Pipeline> Parse(std::string_view yaml, std::string_view source,
                                const StageRegistry& registry,
                                const std::vector<std::string>& sets = {});

  Pipeline(Pipeline&&) noexcept;
  Pipeline& operator=(Pipeline&&) noexcept;
  ~Pipeline();

  // The pipeline's `name:`.
  const std::string& name() const;
  // The stage groups, in order ({"main"} without `groups:`).
  std::vector<std::string> GroupNames() const;
  // What loading found doubtful but not wrong (an expression reading a name that no
  // stage before it writes), one line each with its YAML path.
  const std::vector<std::string>& warnings() const;

  // Ingests options.inputs into the workdir's store, then runs every stage group
  // until every batch is done, writing the pipeline's outputs; returns what the store
  // then holds. Runs with the pipeline's cpu_threads (0: one per core).
  // Errors: InvalidArgument when options.workdir is empty or holds a run of another
  // pipeline (other stages, batch size or input settings); the error of the first
  // input that could not be ingested (the other inputs are still ingested, and
  // nothing is processed); IoError / Corruption from the store or the outputs;
  // Unavailable when a worker gave up after a stall (its leases are released: a
  // later call resumes). What was committed before an error stays committed.
  Result<RunSummary> Run(const RunOptions& options) const;

  // Calls `row` for every item of the workdir's store in id order, with its result
  // in the pipeline's last stage group if it has one (ExportRow::has_result); stops
  // at, and returns, the first error `row` returns. InvalidArgument when `workdir`
  // holds no store.
  Status ForEachResult(const std::string& workdir,
                       const std::function<Status(const ExportRow& row)>& row) const;

 private:
  struct Impl;  // the loaded configuration (src/run/pipeline.cc)
  explicit Pipeline(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice

#endif  // SLUICE_PIPELINE_H_
