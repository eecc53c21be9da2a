#include "src/core/pipeline_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "src/core/operators.h"
#include "src/core/pipeline_graph.h"
#include "src/core/yaml_options.h"

namespace sluice {
namespace {

constexpr std::uint64_t kFnvOffset = 1469598103934665603ull;
constexpr std::uint64_t kFnvPrime = 1099511628211ull;

std::uint64_t Fnv1a(std::string_view text, std::uint64_t hash = kFnvOffset) {
  for (unsigned char c : text) {
    hash ^= c;
    hash *= kFnvPrime;
  }
  return hash;
}

std::vector<std::string> SplitKey(std::string_view key) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = key.find('.', start);
    parts.emplace_back(key.substr(start, dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

std::optional<std::size_t> ParseIndex(std::string_view text) {
  std::size_t index = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), index);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return index;
}

// Applies one --set to the YAML tree. Sequence elements are found by their `name`
// member or by position.
Status ApplyOverride(YAML::Node root, const ConfigOverride& override_) {
  const std::string where = fmt::format("--set {}={}", override_.key, override_.value);
  YAML::Node value;
  try {
    value =
        override_.value.empty() ? YAML::Node(std::string()) : YAML::Load(override_.value);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(fmt::format("{}: value is not valid YAML: {}", where, e.msg));
  }
  std::vector<std::string> parts = SplitKey(override_.key);
  YAML::Node current = root;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    if (part.empty()) return InvalidArgument(fmt::format("{}: empty key segment", where));
    const bool last = i + 1 == parts.size();
    if (current.IsSequence()) {
      std::optional<std::size_t> index = ParseIndex(part);
      std::optional<YAML::Node> found;
      std::vector<std::string> names;
      for (std::size_t j = 0; j < current.size(); ++j) {
        YAML::Node element = current[j];
        std::string name =
            element.IsMap() && element["name"] && element["name"].IsScalar()
                ? element["name"].Scalar()
                : std::string();
        if (!name.empty()) names.push_back(name);
        if ((index && *index == j) || (!name.empty() && name == part)) found = element;
      }
      if (!found) {
        return InvalidArgument(fmt::format(
            "{}: no element '{}' in {} (names: {})", where, part,
            fmt::join(parts.begin(), parts.begin() + i, "."), fmt::join(names, ", ")));
      }
      if (last) {
        return InvalidArgument(
            fmt::format("{}: cannot replace a whole list element", where));
      }
      current.reset(*found);
      continue;
    }
    if (!current.IsMap() && !current.IsNull()) {
      return InvalidArgument(
          fmt::format("{}: '{}' is not a mapping", where,
                      fmt::join(parts.begin(), parts.begin() + i, ".")));
    }
    if (last) {
      current[part] = value;
    } else {
      YAML::Node next = current[part];
      if (!next.IsDefined() || next.IsNull()) {
        current[part] = YAML::Node(YAML::NodeType::Map);
        next.reset(current[part]);
      }
      current.reset(next);
    }
  }
  return Status::Ok();
}

std::string EmitCanonical(const YAML::Node& node) {
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

// Reads the `output:` mapping.
OutputConfig ParseOutput(YamlOptions& top, std::vector<std::string>* errors) {
  OutputConfig output;
  YamlOptions options(top.GetMapping("output").value_or(YAML::Node()), "output", errors);
  const std::string layout =
      options.GetChoice("layout", "none", {"none", "files", "webdataset"});
  if (layout == "files") {
    output.layout = OutputLayout::kFiles;
  } else if (layout == "webdataset") {
    output.layout = OutputLayout::kWebDataset;
  }
  output.dir = options.GetString("dir", "");
  output.image_field = options.GetString("image_field", output.image_field);
  if (output.image_field.empty()) options.AddError("image_field", "must not be empty");
  output.metadata = options.GetBool("metadata", output.metadata);
  output.stats = options.GetBool("stats", output.stats);
  const std::string fields =
      options.GetChoice("fields", "sluice", {"sluice", "img2dataset"});
  if (fields == "img2dataset") output.fields = OutputFields::kImg2Dataset;
  output.shard_digits =
      static_cast<int>(options.GetInt("shard_digits", output.shard_digits, 1, 12));
  options.Finish().IgnoreError();
  return output;
}

// A group's name travels in blob names and store rows: plain letters, digits, '_'
// and '-'.
bool IsGroupName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
  });
}

// Reads `groups:` and `blobs:` once the stages are known; without `groups:`, one
// group of every stage.
void ParseGroups(YamlOptions& top, bool group_given, PipelineConfig& config,
                 std::vector<std::string>* errors) {
  YamlOptions blobs(top.GetMapping("blobs").value_or(YAML::Node()), "blobs", errors);
  config.blobs_dir = blobs.GetString("dir", "");
  blobs.Finish().IgnoreError();

  const std::optional<YAML::Node> groups = top.GetSequence("groups");
  if (!groups.has_value() || groups->size() == 0) {
    if (!IsGroupName(config.group)) {
      top.AddError("group", "a name of letters, digits, '_' and '-'");
    }
    config.groups = {GroupSpec{config.group, 0, config.stages.size(), "group"}};
    return;
  }
  if (group_given) top.AddError("group", "give either group (one group) or groups");
  std::set<std::string> names;
  std::size_t next_stage = 0;  // the stage the next group must start with
  for (std::size_t i = 0; i < groups->size(); ++i) {
    const YAML::Node node = (*groups)[i];
    GroupSpec group;
    group.path = fmt::format("groups[{}]", i);
    if (!node.IsMap()) {
      errors->push_back(
          fmt::format("{}: expected a mapping with name and stages", group.path));
      continue;
    }
    YamlOptions options(node, group.path, errors);
    group.name = options.GetString("name", "");
    if (!group.name.empty()) group.path = fmt::format("groups[{}] ({})", i, group.name);
    const std::vector<std::string> stages = options.GetStringList("stages", {});
    options.Finish().IgnoreError();
    if (!IsGroupName(group.name)) {
      errors->push_back(fmt::format(
          "{}.name: required: a name of letters, digits, '_' and '-'", group.path));
    } else if (!names.insert(group.name).second) {
      errors->push_back(fmt::format("{}.name: '{}' is used by an earlier group",
                                    group.path, group.name));
    }
    if (stages.empty()) {
      errors->push_back(
          fmt::format("{}.stages: required: the group's stages, in order", group.path));
      continue;
    }
    group.first_stage = next_stage;
    for (const std::string& stage : stages) {
      auto found =
          std::find_if(config.stages.begin(), config.stages.end(),
                       [&](const StageSpec& spec) { return spec.name == stage; });
      if (found == config.stages.end()) {
        errors->push_back(
            fmt::format("{}.stages: no stage is named '{}'", group.path, stage));
        return;
      }
      const auto index = static_cast<std::size_t>(found - config.stages.begin());
      if (index != next_stage) {
        errors->push_back(fmt::format(
            "{}.stages: '{}' is out of place: groups take the stages in their order, "
            "each one once{}",
            group.path, stage,
            next_stage < config.stages.size()
                ? fmt::format(" (expected '{}' here)", config.stages[next_stage].name)
                : ""));
        return;
      }
      ++next_stage;
    }
    group.stage_count = next_stage - group.first_stage;
    config.groups.push_back(std::move(group));
  }
  if (next_stage < config.stages.size() && errors->empty()) {
    errors->push_back(fmt::format("groups: stage '{}' and those after it are in no group",
                                  config.stages[next_stage].name));
  }
}

// A reduce node: parsed into config.reducers (it names no input: it reads the
// records the pipeline ends with).
void ParseReduceNode(const YAML::Node& node, const StageSpec& spec, PipelineConfig& config,
                     std::vector<std::string>* errors) {
  for (const char* key : {"input", "inputs"}) {
    if (node[key].IsDefined()) {
      errors->push_back(fmt::format(
          "{}.{}: a reduce reads the records the pipeline ends with, and names no input",
          spec.path, key));
    }
  }
  YAML::Node options = YAML::Clone(node);
  for (const char* key : {"name", "type", "input", "inputs"}) options.remove(key);
  if (!std::all_of(spec.name.begin(), spec.name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
      })) {
    errors->push_back(fmt::format(
        "{}.name: a reduce's name names its output file: only letters, digits, '_' "
        "and '-'",
        spec.path));
  }
  ReduceNodeSpec reducer;
  reducer.path = spec.path;
  reducer.options_yaml = EmitCanonical(options);
  YamlOptions reduce_options(options, spec.path, errors);
  Result<std::shared_ptr<const ReduceSpec>> parsed =
      ParseReduce(spec.name, reduce_options, errors);
  reduce_options.Finish().IgnoreError();
  if (!parsed.ok()) return;
  reducer.spec = std::move(parsed).value();
  config.reducers.push_back(std::move(reducer));
}

}  // namespace

std::string_view OutputLayoutName(OutputLayout layout) {
  switch (layout) {
    case OutputLayout::kNone:
      return "none";
    case OutputLayout::kFiles:
      return "files";
    case OutputLayout::kWebDataset:
      return "webdataset";
  }
  return "none";
}

std::string_view OutputFieldsName(OutputFields fields) {
  switch (fields) {
    case OutputFields::kSluice:
      return "sluice";
    case OutputFields::kImg2Dataset:
      return "img2dataset";
  }
  return "sluice";
}

Result<ConfigOverride> ParseOverride(std::string_view text) {
  std::size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return InvalidArgument(
        fmt::format("--set '{}': expected KEY=VALUE (e.g. stages.wait.ms=5)", text));
  }
  return ConfigOverride{std::string(text.substr(0, eq)),
                        std::string(text.substr(eq + 1))};
}

Result<PipelineConfig> ParsePipeline(std::string_view yaml, std::string_view source,
                                     const std::vector<ConfigOverride>& overrides,
                                     const StageRegistry& registry) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(fmt::format("{}:{}:{}: invalid YAML: {}", source,
                                       e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (!root.IsMap()) {
    return InvalidArgument(
        fmt::format("{}: expected a mapping at the top level", source));
  }
  for (const ConfigOverride& override_ : overrides) {
    SLUICE_RETURN_IF_ERROR(ApplyOverride(root, override_).WithContext(source));
  }

  std::vector<std::string> errors;
  YamlOptions top(root, "", &errors);
  PipelineConfig config;
  config.name = top.GetString("name", "");
  if (config.name.empty()) top.AddError("name", "required: a name for the pipeline");
  top.GetString("description", "");
  config.group = top.GetString("group", "main");
  config.batch_size =
      static_cast<std::uint32_t>(top.GetInt("batch_size", 1000, 1, 1000000));
  config.lease = std::chrono::milliseconds(
      static_cast<std::int64_t>(top.GetDouble("lease_seconds", 60, 1, 86400) * 1000));
  config.in_flight_batches =
      static_cast<std::size_t>(top.GetInt("in_flight_batches", 0, 0, 100000));
  config.open_batches =
      static_cast<std::size_t>(top.GetInt("open_batches", 0, 0, 1000000));
  config.cpu_threads = static_cast<std::size_t>(top.GetInt("threads", 0, 0, 1024));
  config.chunk_size = static_cast<std::size_t>(top.GetInt("chunk_size", 256, 1, 65536));
  config.grace = std::chrono::milliseconds(
      static_cast<std::int64_t>(top.GetDouble("grace_seconds", 30, 0, 86400) * 1000));
  config.stall = std::chrono::milliseconds(
      static_cast<std::int64_t>(top.GetDouble("stall_seconds", 0, 0, 7 * 86400) * 1000));
  // A safety switch, not part of the fingerprint: items refused as "forbidden" can be
  // retried with it turned on (`sluice retry --reason forbidden`).
  config.settings.allow_private_networks = top.GetBool("allow_private_networks", false);

  YamlOptions input(top.GetMapping("input").value_or(YAML::Node()), "input", &errors);
  config.input.format =
      input.GetChoice("format", "auto", {"auto", "text", "csv", "tsv", "jsonl"});
  config.input.url_column = input.GetString("url_column", "url");
  if (config.input.url_column.empty()) input.AddError("url_column", "must not be empty");
  config.input.max_line_bytes =
      static_cast<std::size_t>(input.GetInt("max_line_bytes", 65536, 16, 64 << 20));
  input.Finish().IgnoreError();
  config.output = ParseOutput(top, &errors);

  YAML::Node stages =
      top.GetSequence("stages").value_or(YAML::Node(YAML::NodeType::Sequence));
  if (stages.size() == 0) top.AddError("stages", "required: a list of stages");
  std::set<std::string> names;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    YAML::Node stage = stages[i];
    StageSpec spec;
    spec.path = fmt::format("stages[{}]", i);
    if (!stage.IsMap()) {
      errors.push_back(
          fmt::format("{}: expected a mapping with name and type", spec.path));
      continue;
    }
    auto scalar = [&](const char* key) {
      const YAML::Node& map = stage;
      YAML::Node value = map[key];
      return value.IsDefined() && value.IsScalar() ? value.Scalar() : std::string();
    };
    spec.type = scalar("type");
    spec.name = scalar("name");
    if (spec.name.empty()) spec.name = spec.type;
    if (!spec.name.empty()) spec.path = fmt::format("stages[{}] ({})", i, spec.name);
    if (spec.type.empty()) {
      errors.push_back(
          fmt::format("{}.type: required: one of the stage types", spec.path));
      continue;
    }
    if (!names.insert(spec.name).second) {
      errors.push_back(
          fmt::format("{}.name: '{}' is used by an earlier stage", spec.path, spec.name));
    }
    if (spec.name.find('.') != std::string::npos) {
      errors.push_back(fmt::format("{}.name: must not contain '.'", spec.path));
    }
    if (spec.type == "reduce") {
      ParseReduceNode(stage, spec, config, &errors);
      continue;
    }
    if (!config.reducers.empty()) {
      errors.push_back(fmt::format(
          "{}: comes after the reduce node {}: a reduce folds the records the pipeline "
          "ends with, so reduce nodes come after every other node",
          spec.path, config.reducers.back().path));
    }
    spec.is_operator = IsOperatorType(spec.type);
    ReadNodeInputs(stage, spec, &errors);
    const StageFactory* factory = registry.Find(spec.type);
    if (factory == nullptr && !spec.is_operator) {
      std::vector<std::string> types;
      for (const auto& [type, description] : registry.List()) types.push_back(type);
      errors.push_back(fmt::format(
          "{}.type: unknown stage type '{}' (known: {}; operators: copy, split, shard, "
          "merge, join, reduce)",
          spec.path, spec.type, fmt::join(types, ", ")));
      continue;
    }
    YAML::Node options = YAML::Clone(stage);
    for (const char* key : {"name", "type", "input", "inputs"}) options.remove(key);
    spec.options_yaml = EmitCanonical(options);
    if (spec.is_operator) {
      YamlOptions operator_options(options, spec.path, &errors);
      Result<BuiltOperator> built = BuildOperator(spec.type, spec.name, spec.input_refs,
                                                  operator_options, &errors);
      if (built.ok()) {
        spec.branches = built->branches;
        spec.fields.declared = true;
        spec.fields.reads_or_columns = built->reads_or_columns;
      }
      operator_options.Finish().IgnoreError();
      config.stages.push_back(std::move(spec));
      continue;
    }
    // Build the stage once so that its options are checked now, not at run time.
    YamlOptions stage_options(options, spec.path, &errors);
    stage_options.set_pipeline(config.settings);
    Result<std::unique_ptr<Stage>> built = (*factory)(stage_options);
    if (built.ok() && *built != nullptr) spec.fields = (*built)->Fields();
    if (!built.ok()) {
      if (errors.empty() ||
          errors.back().find(built.status().message()) == std::string::npos) {
        errors.push_back(built.status().message());
      }
    }
    stage_options.Finish().IgnoreError();
    config.stages.push_back(std::move(spec));
  }
  if (stages.size() > 0 && config.stages.empty() && !config.reducers.empty()) {
    errors.push_back("stages: a reduce needs stages before it to fold the records of");
  }
  if (errors.empty()) ResolveGraph(config, &errors);
  if (errors.empty()) CheckFields(config, &errors, &config.warnings);
  ParseGroups(top, root["group"].IsDefined(), config, &errors);
  if (errors.empty()) CheckGroupCuts(config, &errors);
  top.Finish().IgnoreError();
  SLUICE_RETURN_IF_ERROR(ConfigErrorsStatus(source, errors));

  std::uint64_t hash = Fnv1a(fmt::format(
      "batch_size={};format={};url_column={};max_line={};", config.batch_size,
      config.input.format, config.input.url_column, config.input.max_line_bytes));
  for (const StageSpec& spec : config.stages) {
    hash = Fnv1a(fmt::format("stage={};type={};options={};", spec.name, spec.type,
                             spec.options_yaml),
                 hash);
    // A chain's nodes name no inputs, and hash as they did before graphs existed.
    if (!spec.input_refs.empty()) {
      hash = Fnv1a(fmt::format("inputs={};", fmt::join(spec.input_refs, ",")), hash);
    }
  }
  for (const ReduceNodeSpec& reducer : config.reducers) {
    hash = Fnv1a(
        fmt::format("reduce={};options={};", reducer.spec->name, reducer.options_yaml), hash);
  }
  hash =
      Fnv1a(fmt::format("output={};image_field={};metadata={};stats={};",
                        OutputLayoutName(config.output.layout), config.output.image_field,
                        config.output.metadata, config.output.stats),
            hash);
  if (config.output.fields != OutputFields::kSluice) {
    hash = Fnv1a(
        fmt::format("fields={};shard_digits={};", OutputFieldsName(config.output.fields),
                    config.output.shard_digits),
        hash);
  }
  if (config.groups.size() > 1) {
    for (const GroupSpec& group : config.groups) {
      hash = Fnv1a(fmt::format("group={};first={};count={};", group.name,
                               group.first_stage, group.stage_count),
                   hash);
    }
  }
  config.fingerprint = fmt::format("{:016x}", hash);
  return config;
}

std::vector<std::string> PipelineConfig::GroupNames() const {
  std::vector<std::string> names;
  for (const GroupSpec& spec : groups) names.push_back(spec.name);
  return names;
}

const GroupSpec* PipelineConfig::FindGroup(std::string_view group_name) const {
  for (const GroupSpec& spec : groups) {
    if (spec.name == group_name) return &spec;
  }
  return nullptr;
}

Result<PipelineConfig> LoadPipelineFile(const std::string& path,
                                        const std::vector<ConfigOverride>& overrides,
                                        const StageRegistry& registry) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return NotFound(
        fmt::format("{}: cannot open pipeline file: {}", path, std::strerror(errno)));
  }
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) return IoError(fmt::format("{}: cannot read pipeline file", path));
  return ParsePipeline(text.str(), path, overrides, registry);
}

Result<std::vector<NamedStage>> BuildStages(const PipelineConfig& config,
                                            const StageRegistry& registry,
                                            const GroupSpec* group) {
  std::vector<NamedStage> stages;
  const std::size_t first = group == nullptr ? 0 : group->first_stage;
  const std::size_t end =
      group == nullptr
          ? config.stages.size()
          : std::min(config.stages.size(), group->first_stage + group->stage_count);
  for (std::size_t index = first; index < end; ++index) {
    const StageSpec& spec = config.stages[index];
    std::vector<std::string> errors;
    YAML::Node options;
    try {
      options = YAML::Load(spec.options_yaml);
    } catch (const YAML::Exception& e) {
      return Internal(fmt::format("{}: options do not parse back: {}", spec.path, e.msg));
    }
    YamlOptions node_options(options, spec.path, &errors);
    node_options.set_pipeline(config.settings);
    // Inputs relative to the group; the group's first node reads its input.
    std::vector<NodeInput> inputs;
    if (index != first) {
      for (const NodeInput& input : spec.inputs) {
        if (input.node < first || input.node >= index) {
          return Internal(fmt::format("{}: reads a node outside its group", spec.path));
        }
        inputs.push_back(NodeInput{input.node - first, input.port});
      }
    }
    if (spec.is_operator) {
      Result<BuiltOperator> built =
          BuildOperator(spec.type, spec.name, spec.input_refs, node_options, &errors);
      Status finished = node_options.Finish();
      if (!built.ok()) return built.status();
      SLUICE_RETURN_IF_ERROR(finished);
      stages.emplace_back(spec.name, std::move(built->op), std::move(inputs));
      continue;
    }
    const StageFactory* factory = registry.Find(spec.type);
    if (factory == nullptr) {
      return InvalidArgument(
          fmt::format("{}: unknown stage type '{}'", spec.path, spec.type));
    }
    Result<std::unique_ptr<Stage>> built = (*factory)(node_options);
    Status finished = node_options.Finish();
    if (!built.ok()) return built.status();
    SLUICE_RETURN_IF_ERROR(finished);
    stages.emplace_back(spec.name, std::move(built).value(), std::move(inputs));
  }
  // Each stage plans for the stage that reads it, if a stage does.
  const std::vector<GraphShape> shapes = ShapesOf(stages);
  std::vector<const Stage*> reader(stages.size(), nullptr);
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    for (const NodeInput& input : shapes[i].inputs) {
      if (input.node < stages.size() && stages[input.node].op == nullptr) {
        reader[input.node] = stages[i].stage.get();
      }
    }
  }
  for (std::size_t i = 0; i < stages.size(); ++i) {
    if (stages[i].stage != nullptr) stages[i].stage->PlanFor(reader[i]);
  }
  return stages;
}

std::size_t InFlightBatches(const PipelineConfig& config,
                            const std::vector<NamedStage>& stages) {
  if (config.in_flight_batches > 0) return config.in_flight_batches;
  std::size_t threads =
      config.cpu_threads > 0
          ? config.cpu_threads
          : std::max<std::size_t>(1, std::thread::hardware_concurrency());
  std::size_t batches = threads + 2;
  for (const NamedStage& named : stages) {
    if (named.stage == nullptr || named.stage->kind() != Stage::Kind::kAsync) continue;
    const auto& async = static_cast<const AsyncStage&>(*named.stage);
    batches += (async.max_in_flight() + config.batch_size - 1) / config.batch_size;
  }
  return batches;
}

std::size_t OpenBatches(const PipelineConfig& config, std::size_t in_flight_batches) {
  if (config.open_batches > 0) return std::max(config.open_batches, in_flight_batches);
  return std::max<std::size_t>(64, 4 * in_flight_batches);
}

}  // namespace sluice
