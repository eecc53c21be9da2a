// Pipeline configuration: the YAML a user writes, mapped onto options structs.
//
// A pipeline file looks like:
//
//   name: sleep-example
//   batch_size: 1000          # items per batch (lease, commit and output unit)
//   input: {format: auto, url_column: url}
//   output: {layout: files, dir: "", image_field: encoded, metadata: true, stats: true,
//            fields: sluice, shard_digits: 5}
//   stages:
//     - {name: wait, type: sleep, ms: 5}
//     - {name: totals, type: reduce, aggregates: {ok: {count: "status == 'ok'"}}}
//
// Reduce nodes (src/core/reduce.h) come last: they fold every record the pipeline
// ends with, and are kept apart from the stages (PipelineConfig::reducers).
//
// A pipeline split by function names its stage groups, each a run of consecutive
// stages, in order, together covering every stage (docs/cluster.md):
//
//   groups:
//     - {name: download, stages: [fetch, decode, resize]}
//     - {name: detect, stages: [faces, encode]}
//   blobs: {dir: /mnt/shared/sluice-blobs}   # where a group leaves records for the next
//
// Each group's batches are leased, processed and committed on their own (`sluice
// worker --group NAME`); a batch committed by one group becomes pending for the next.
// Without `groups:` the stages form one group, named by `group` ("main").
//
// Loading checks everything it can without running: unknown keys, wrong types,
// values out of range, unknown stage types and each stage's own options. Every
// error names its YAML path ("stages[0] (wait).ms: expected an integer, got 'x'"),
// and all errors are reported at once, one per line.
//
// `--set KEY=VALUE` overrides are applied to the YAML tree before validation:
// KEY is a dotted path ("batch_size", "input.url_column", "stages.wait.ms" where
// "wait" is a stage name, or "stages.0.ms" by position), VALUE is parsed as YAML.
#ifndef SLUICE_CORE_PIPELINE_CONFIG_H_
#define SLUICE_CORE_PIPELINE_CONFIG_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/stage.h"
#include "sluice/status.h"
#include "src/core/reduce.h"
#include "src/core/runtime.h"

namespace sluice {

// How input files are read (see src/input/ingest.h).
struct InputConfig {
  std::string format = "auto";     // auto, text, csv, tsv or jsonl
  std::string url_column = "url";  // column (csv/tsv) or member (jsonl) holding the URL
  std::size_t max_line_bytes = 65536;  // longer lines are rejected, not buffered
};

// What a run writes besides the store, per batch (see src/output/file_batch_output.h).
enum class OutputLayout : std::uint8_t {
  kNone,        // "none": no image files (metadata and stats may still be written)
  kFiles,       // "files": images/BBBBBBBB/ITEMID.EXT plus ITEMID.json per ok item
  kWebDataset,  // "webdataset": one tar shard per batch, shards/BBBBBBBB.tar
};

// Which names and JSON contents the outputs have (src/output/output_flavour.h).
enum class OutputFields : std::uint8_t {
  kSluice,       // "sluice": images/BBBBBBBB/..., sluice's own field names
  kImg2Dataset,  // "img2dataset": img2dataset's shard names, keys and columns
};

struct OutputConfig {
  OutputLayout layout = OutputLayout::kNone;  // "layout": none, files or webdataset
  std::string dir;                            // "dir": output root; "" = <workdir>/output
  std::string image_field = "encoded";  // "image_field": the Bytes field saved as image
  bool metadata = true;  // "metadata": metadata/BBBBBBBB.jsonl, one line per item
  bool stats = true;     // "stats": stats/BBBBBBBB.json, counts and timings
  OutputFields fields = OutputFields::kSluice;  // "fields": sluice or img2dataset
  // "shard_digits": with fields img2dataset, the digits of a shard's number in its
  // names (img2dataset's oom_shard_count), 1 to 12.
  int shard_digits = 5;

  // True when a run writes any file at all.
  bool enabled() const { return layout != OutputLayout::kNone || metadata || stats; }
};

// The YAML name of a layout ("none", "files", "webdataset").
std::string_view OutputLayoutName(OutputLayout layout);
// The YAML name of a fields flavour ("sluice", "img2dataset").
std::string_view OutputFieldsName(OutputFields fields);

// One node as declared, a stage or an operator (src/core/operators.h); its own
// options stay in YAML text until it is built.
struct StageSpec {
  std::string name;          // unique within the pipeline
  std::string type;          // a StageRegistry name, or an operator's
  std::string path;          // YAML path for messages, e.g. "stages[1] (resize)"
  std::string options_yaml;  // the mapping, without name, type, input and inputs
  // `input` or `inputs` as written ("fork.thumb"); empty: the node before it.
  std::vector<std::string> input_refs;
  // The same, resolved: indices into PipelineConfig::stages; empty: the node before.
  std::vector<NodeInput> inputs;
  // An operator's branches (copy, split, shard), in port order; empty otherwise.
  std::vector<std::string> branches;
  bool is_operator = false;
  // What it reads and writes, from the built stage or operator (Stage::Fields).
  StageFields fields;
};

// A reduce node (src/core/reduce.h): it folds the records the pipeline ends with,
// so it comes after every other node and is not one of `stages`.
struct ReduceNodeSpec {
  std::string path;          // YAML path for messages, e.g. "stages[5] (per_host)"
  std::string options_yaml;  // the mapping, without name and type
  std::shared_ptr<const ReduceSpec> spec;
};

// One stage group: stages[first_stage, first_stage + stage_count).
struct GroupSpec {
  std::string name;
  std::size_t first_stage = 0;
  std::size_t stage_count = 0;
  std::string path;  // YAML path for messages, e.g. "groups[1] (detect)"
};

struct PipelineConfig {
  std::string name;            // shown in status lines and reports
  std::string group = "main";  // without `groups:`, the one group's name
  InputConfig input;
  std::uint32_t batch_size = 1000;         // items per batch
  std::chrono::milliseconds lease{60000};  // a lease lasts this long unless renewed
  // "in_flight_batches": how many batches' worth of records may be in the stages at
  // once; 0 = derived from the stages.
  std::size_t in_flight_batches = 0;
  // "open_batches": batches leased and not committed, counting those that wait only
  // for a few slow records; 0 = 4 x the in-flight batches, at least 64.
  std::size_t open_batches = 0;
  std::size_t cpu_threads = 0;             // CPU pool size; 0 = one per core
  std::size_t chunk_size = 256;            // records per chunk between stages
  std::chrono::milliseconds grace{30000};  // on stop, time left to in-flight batches
  // "stall_seconds": a worker in which nothing moves this long while work remains
  // gives up its leases and exits non-zero; 0 = the longest record deadline of the
  // async stages plus a minute.
  std::chrono::milliseconds stall{0};
  PipelineSettings settings;  // pipeline-wide settings the stages see
  OutputConfig output;        // files written per batch, before its commit
  std::vector<StageSpec> stages;
  // The reduce nodes, after the stages in the YAML; they run with the last group's
  // outputs (src/output/reduce_output.h).
  std::vector<ReduceNodeSpec> reducers;
  // The stage groups in order; one group named `group` when the YAML has none.
  std::vector<GroupSpec> groups;
  // "blobs.dir": where a group leaves each batch's records for the next one; "" =
  // <workdir>/blobs (one machine). Only used with more than one group.
  std::string blobs_dir;
  // What loading found doubtful but not wrong (an expression reading a name no node
  // before it writes: an input column, or a typo), one line each, with YAML paths.
  std::vector<std::string> warnings;

  // The groups' names, in order.
  std::vector<std::string> GroupNames() const;
  // The group named `name`, or nullptr.
  const GroupSpec* FindGroup(std::string_view name) const;

  // A digest of what decides results (stages, batch size, input reading) and the
  // shape of the outputs (layout, image field, metadata, stats, fields and, with
  // fields img2dataset, shard digits: a resumed run must not mix two layouts or two
  // namings), so that a workdir is not resumed with a different pipeline. Tuning
  // knobs, and where the outputs go (output.dir), are left out. Fields sluice adds
  // nothing to the digest, so that workdirs made before the key existed resume.
  std::string fingerprint;
};

// One `--set KEY=VALUE`.
struct ConfigOverride {
  std::string key;
  std::string value;
};

// Parses "KEY=VALUE"; an error names the malformed text.
Result<ConfigOverride> ParseOverride(std::string_view text);

// Loads a pipeline from YAML text. `source` names it in messages (a file path).
// Stage types are checked against `registry`, and each stage is built once to check
// its options.
Result<PipelineConfig> ParsePipeline(std::string_view yaml, std::string_view source,
                                     const std::vector<ConfigOverride>& overrides,
                                     const StageRegistry& registry);

// Reads and parses a pipeline file.
Result<PipelineConfig> LoadPipelineFile(const std::string& path,
                                        const std::vector<ConfigOverride>& overrides,
                                        const StageRegistry& registry);

// Creates the nodes of `config` (only those of `group`, when given), in order, wired
// as the YAML says, and lets each stage plan for the stage reading it in the same
// group (Stage::PlanFor; nullptr when an operator or nothing reads it).
Result<std::vector<NamedStage>> BuildStages(const PipelineConfig& config,
                                            const StageRegistry& registry,
                                            const GroupSpec* group = nullptr);

// The batch budget: config.in_flight_batches, or, when 0, enough batches to keep
// every async stage full plus one per CPU thread and a little slack.
// Batches leased and not committed at once: `open_batches`, or derived from
// InFlightBatches().
std::size_t OpenBatches(const PipelineConfig& config, std::size_t in_flight_batches);

// `stages`: those the worker runs (one group's).
std::size_t InFlightBatches(const PipelineConfig& config,
                            const std::vector<NamedStage>& stages);

}  // namespace sluice

#endif  // SLUICE_CORE_PIPELINE_CONFIG_H_
