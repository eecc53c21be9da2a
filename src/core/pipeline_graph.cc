#include "src/core/pipeline_graph.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <optional>
#include <set>

#include "src/core/operators.h"

namespace sluice {
namespace {

bool IsCloserType(const std::string& type) { return type == "merge" || type == "join"; }

// The nodes `spec` (index `i`) reads, with the node before it when it names none.
std::vector<NodeInput> InputsOf(const PipelineConfig& config, std::size_t i) {
  if (!config.stages[i].inputs.empty()) return config.stages[i].inputs;
  return {i == 0 ? NodeInput{kSourceNode, 0} : NodeInput{i - 1, 0}};
}

std::string InputKey(const StageSpec& spec) {
  return spec.path + (IsCloserType(spec.type) ? ".inputs" : ".input");
}

// A path of reads from `from` back to `to`, [from, ..., to], or empty.
std::vector<std::size_t> ReadPath(const PipelineConfig& config, std::size_t from,
                                  std::size_t to) {
  std::vector<std::size_t> parent(config.stages.size(), kSourceNode);
  std::vector<bool> seen(config.stages.size(), false);
  std::vector<std::size_t> stack{from};
  seen[from] = true;
  while (!stack.empty()) {
    const std::size_t node = stack.back();
    stack.pop_back();
    if (node == to) {
      std::vector<std::size_t> path{to};
      for (std::size_t at = to; at != from;) {
        at = parent[at];
        path.push_back(at);
      }
      std::reverse(path.begin(), path.end());
      return path;
    }
    for (const NodeInput& input : InputsOf(config, node)) {
      if (input.node == kSourceNode || input.node >= seen.size() || seen[input.node]) {
        continue;
      }
      seen[input.node] = true;
      parent[input.node] = node;
      stack.push_back(input.node);
    }
  }
  return {};
}

std::string DotQuote(std::string_view text) {
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

}  // namespace

void ReadNodeInputs(const YAML::Node& node, StageSpec& spec,
                    std::vector<std::string>* errors) {
  const YAML::Node input = node["input"];
  const YAML::Node inputs = node["inputs"];
  const bool closer = IsCloserType(spec.type);
  if (input.IsDefined() && inputs.IsDefined()) {
    errors->push_back(fmt::format(
        "{}: give input (the node it reads) or inputs (for merge and join), not both",
        spec.path));
    return;
  }
  if (input.IsDefined()) {
    if (!input.IsScalar() || input.Scalar().empty()) {
      errors->push_back(fmt::format(
          "{}.input: expected the name of the node it reads (NAME or NAME.BRANCH)",
          spec.path));
      return;
    }
    if (closer) {
      errors->push_back(fmt::format(
          "{}.input: a {} reads several nodes: list them under inputs", spec.path,
          spec.type));
      return;
    }
    spec.input_refs = {input.Scalar()};
    return;
  }
  if (inputs.IsDefined()) {
    if (!closer) {
      errors->push_back(fmt::format(
          "{}.inputs: only merge and join read several nodes; give input: NAME",
          spec.path));
      return;
    }
    bool ok = inputs.IsSequence();
    for (std::size_t i = 0; ok && i < inputs.size(); ++i) {
      ok = inputs[i].IsScalar() && !inputs[i].Scalar().empty();
      if (ok) spec.input_refs.push_back(inputs[i].Scalar());
    }
    if (!ok) {
      spec.input_refs.clear();
      errors->push_back(fmt::format(
          "{}.inputs: expected a list of node names (NAME or NAME.BRANCH)", spec.path));
    }
    return;
  }
  if (closer) {
    errors->push_back(fmt::format(
        "{}.inputs: required: the nodes the {} brings together, two or more", spec.path,
        spec.type));
  }
}

void ResolveGraph(PipelineConfig& config, std::vector<std::string>* errors) {
  std::map<std::string, std::size_t, std::less<>> index;
  for (std::size_t i = 0; i < config.stages.size(); ++i) index[config.stages[i].name] = i;
  const std::size_t errors_before = errors->size();
  for (std::size_t i = 0; i < config.stages.size(); ++i) {
    StageSpec& spec = config.stages[i];
    spec.inputs.clear();
    if (spec.input_refs.empty()) {
      if (i > 0 && config.stages[i - 1].branches.size() > 1) {
        const StageSpec& before = config.stages[i - 1];
        errors->push_back(fmt::format(
            "{}: the node before it, '{}', has branches ({}): say which one it reads "
            "(input: {}.{})",
            spec.path, before.name, fmt::join(before.branches, ", "), before.name,
            before.branches[0]));
      }
      continue;
    }
    if (i == 0) {
      errors->push_back(fmt::format(
          "{}: the first node reads the pipeline's input: it names no input", spec.path));
      continue;
    }
    for (const std::string& ref : spec.input_refs) {
      const std::size_t dot = ref.find('.');
      const std::string_view name = std::string_view(ref).substr(0, dot);
      auto found = index.find(name);
      if (found == index.end()) {
        errors->push_back(fmt::format("{}: no node is named '{}'", InputKey(spec), name));
        continue;
      }
      const StageSpec& target = config.stages[found->second];
      NodeInput input{found->second, 0};
      if (dot != std::string::npos) {
        const std::string_view branch = std::string_view(ref).substr(dot + 1);
        auto at = std::find(target.branches.begin(), target.branches.end(), branch);
        if (target.branches.empty()) {
          errors->push_back(fmt::format("{}: '{}' has no branches: read it as '{}'",
                                        InputKey(spec), target.name, target.name));
          continue;
        }
        if (at == target.branches.end()) {
          errors->push_back(fmt::format("{}: '{}' has no branch '{}' (branches: {})",
                                        InputKey(spec), target.name, branch,
                                        fmt::join(target.branches, ", ")));
          continue;
        }
        input.port = static_cast<std::size_t>(at - target.branches.begin());
      } else if (target.branches.size() > 1) {
        errors->push_back(fmt::format(
            "{}: '{}' has branches ({}): read one of them, as '{}.{}'", InputKey(spec),
            target.name, fmt::join(target.branches, ", "), target.name,
            target.branches[0]));
        continue;
      }
      spec.inputs.push_back(input);
    }
  }
  if (errors->size() > errors_before) return;
  // Each node reads only nodes above it; a node that reads one below is either in a
  // cycle or just out of order, and the message says which.
  for (std::size_t i = 0; i < config.stages.size(); ++i) {
    const StageSpec& spec = config.stages[i];
    for (std::size_t k = 0; k < spec.inputs.size(); ++k) {
      const std::size_t target = spec.inputs[k].node;
      if (target < i) continue;
      std::vector<std::size_t> path = ReadPath(config, target, i);
      if (target == i) {
        errors->push_back(fmt::format("{}: reads itself", InputKey(spec)));
      } else if (!path.empty()) {
        // Records flow from `i` down the path to `target`, and back into `i`.
        std::vector<std::string> names;
        for (auto it = path.rbegin(); it != path.rend(); ++it) {
          names.push_back(config.stages[*it].name);
        }
        names.push_back(spec.name);
        errors->push_back(fmt::format("{}: '{}' makes a cycle: {}", InputKey(spec),
                                      spec.input_refs[k], fmt::join(names, " -> ")));
      } else {
        errors->push_back(fmt::format(
            "{}: '{}' is listed after it: list each node below the nodes it reads",
            InputKey(spec), spec.input_refs[k]));
      }
    }
  }
  if (errors->size() > errors_before) return;
  for (const GraphError& error : CheckGraph(PipelineShapes(config))) {
    errors->push_back(fmt::format("{}: {}", config.stages[error.node].path, error.message));
  }
}

void CheckFields(const PipelineConfig& config, std::vector<std::string>* errors,
                 std::vector<std::string>* warnings) {
  // The fields each node's output surely has; nullopt: unknown (a stage that does
  // not declare its fields is upstream).
  using Fields = std::optional<std::set<std::string>>;
  std::vector<Fields> out(config.stages.size());
  // Who writes a field, for the hint in a message.
  std::map<std::string, std::string> writer;
  for (const StageSpec& spec : config.stages) {
    for (const std::string& field : spec.fields.writes) writer.try_emplace(field, spec.name);
  }
  auto hint = [&](const std::string& field) {
    auto found = writer.find(field);
    return found == writer.end()
               ? std::string()
               : fmt::format(" ('{}' writes it: put it before)", found->second);
  };
  auto input_fields = [&](const NodeInput& input) -> Fields {
    if (input.node == kSourceNode) return std::set<std::string>{};
    return out[input.node];
  };
  for (std::size_t i = 0; i < config.stages.size(); ++i) {
    const StageSpec& spec = config.stages[i];
    const std::vector<NodeInput> inputs = InputsOf(config, i);
    Fields in;
    if (spec.type == "merge") {
      // Only what every branch writes is sure to be there.
      in = input_fields(inputs[0]);
      for (std::size_t k = 1; k < inputs.size() && in.has_value(); ++k) {
        const Fields other = input_fields(inputs[k]);
        if (!other.has_value()) {
          in.reset();
          break;
        }
        std::set<std::string> both;
        std::set_intersection(in->begin(), in->end(), other->begin(), other->end(),
                              std::inserter(both, both.end()));
        in = std::move(both);
      }
    } else if (spec.type == "join") {
      in = input_fields(inputs[0]);
      YAML::Node options = YAML::Load(spec.options_yaml);
      for (std::size_t k = 1; k < inputs.size(); ++k) {
        const Fields part = input_fields(inputs[k]);
        const YAML::Node taken = options["fields"][spec.input_refs[k]];
        if (!taken.IsSequence()) continue;
        for (const YAML::Node& name : taken) {
          const std::string field = name.as<std::string>();
          if (part.has_value() && !part->contains(field)) {
            errors->push_back(fmt::format(
                "{}.fields.{}: takes '{}', which no node on that branch writes{}",
                spec.path, spec.input_refs[k], field, hint(field)));
          }
          if (in.has_value()) in->insert(field);
        }
      }
    } else {
      in = input_fields(inputs[0]);
    }
    if (in.has_value()) {
      for (const std::string& field : spec.fields.reads) {
        if (!in->contains(field)) {
          errors->push_back(fmt::format("{}: reads '{}', which no node before it writes{}",
                                        spec.path, field, hint(field)));
        }
      }
      for (const std::string& name : spec.fields.reads_or_columns) {
        if (!in->contains(name)) {
          warnings->push_back(fmt::format(
              "{}: '{}' is written by no node before it{}: it must be an input column, "
              "or it reads as missing",
              spec.path, name, hint(name)));
        }
      }
    }
    if (!spec.fields.declared || !in.has_value()) {
      out[i].reset();
    } else {
      out[i] = std::move(in);
      out[i]->insert(spec.fields.writes.begin(), spec.fields.writes.end());
    }
  }
  const Fields& end = out.empty() ? Fields() : out.back();
  if (config.output.layout != OutputLayout::kNone && end.has_value() &&
      !end->contains(config.output.image_field)) {
    errors->push_back(fmt::format(
        "output.image_field: '{}', the field saved as each item's image, is written by "
        "no node{} (an encode stage writes \"encoded\")",
        config.output.image_field, hint(config.output.image_field)));
  }
  for (const ReduceNodeSpec& reducer : config.reducers) {
    if (!end.has_value()) break;
    for (const std::string& name : reducer.spec->reads) {
      if (!end->contains(name)) {
        warnings->push_back(fmt::format(
            "{}: '{}' is written by no node before it{}: it must be an input column, "
            "or it reads as missing",
            reducer.path, name, hint(name)));
      }
    }
  }
}

void CheckGroupCuts(const PipelineConfig& config, std::vector<std::string>* errors) {
  for (std::size_t g = 1; g < config.groups.size(); ++g) {
    const GroupSpec& group = config.groups[g];
    const std::size_t first = group.first_stage;
    std::size_t crossing = 0;
    bool plain = false;  // the one crossing is the node before into the first
    for (std::size_t k = first; k < config.stages.size(); ++k) {
      for (const NodeInput& input : InputsOf(config, k)) {
        if (input.node == kSourceNode || input.node >= first) continue;
        ++crossing;
        plain = k == first && input.node == first - 1 &&
                config.stages[input.node].branches.size() <= 1;
      }
    }
    if (crossing != 1 || !plain) {
      errors->push_back(fmt::format(
          "{}: starts at '{}', where the pipeline is not one stream ({} streams run into "
          "the group): a group starts outside the branches of copies, splits and "
          "shards",
          group.path, config.stages[first].name, crossing));
    }
  }
}

std::vector<GraphShape> PipelineShapes(const PipelineConfig& config) {
  std::vector<GraphShape> shapes;
  for (std::size_t i = 0; i < config.stages.size(); ++i) {
    const StageSpec& spec = config.stages[i];
    GraphShape& shape = shapes.emplace_back();
    shape.name = spec.name;
    shape.kind = spec.is_operator ? OperatorShape(spec.type) : GraphShape::Kind::kStage;
    shape.ports = std::max<std::size_t>(1, spec.branches.size());
    shape.inputs = InputsOf(config, i);
    shape.branches = spec.branches;
  }
  return shapes;
}

std::string GraphText(const PipelineConfig& config) {
  const std::vector<GraphShape> shapes = PipelineShapes(config);
  std::string text;
  for (const GroupSpec& group : config.groups) {
    if (config.groups.size() > 1) text += fmt::format("group {}:\n", group.name);
    for (std::size_t i = group.first_stage;
         i < group.first_stage + group.stage_count && i < shapes.size(); ++i) {
      std::vector<std::string> inputs;
      for (const NodeInput& input : shapes[i].inputs) {
        inputs.push_back(PortName(shapes, input));
      }
      text += fmt::format("  {} ({}) <- {}", shapes[i].name, config.stages[i].type,
                          fmt::join(inputs, ", "));
      if (!shapes[i].branches.empty()) {
        text += fmt::format(" -> branches {}", fmt::join(shapes[i].branches, ", "));
      }
      if (i + 1 == shapes.size()) text += " -> end";
      text += '\n';
    }
  }
  for (const ReduceNodeSpec& reducer : config.reducers) {
    text += fmt::format("  {} (reduce) <- end\n", reducer.spec->name);
  }
  return text;
}

std::string GraphDot(const PipelineConfig& config) {
  const std::vector<GraphShape> shapes = PipelineShapes(config);
  std::string dot = fmt::format("digraph {} {{\n  rankdir=LR;\n", DotQuote(config.name));
  dot += "  \"(input)\" [shape=plaintext];\n  \"(end)\" [shape=plaintext];\n";
  for (const GroupSpec& group : config.groups) {
    const bool cluster = config.groups.size() > 1;
    if (cluster) {
      dot += fmt::format("  subgraph {} {{\n    label={};\n",
                         DotQuote("cluster_" + group.name), DotQuote(group.name));
    }
    for (std::size_t i = group.first_stage;
         i < group.first_stage + group.stage_count && i < shapes.size(); ++i) {
      const char* shape = "box";
      switch (shapes[i].kind) {
        case GraphShape::Kind::kStage:
          break;
        case GraphShape::Kind::kCopy:
        case GraphShape::Kind::kRoute:
          shape = "trapezium";
          break;
        case GraphShape::Kind::kMerge:
        case GraphShape::Kind::kJoin:
          shape = "invtrapezium";
          break;
      }
      dot += fmt::format("  {}  {} [label={}, shape={}];\n", cluster ? "  " : "",
                         DotQuote(shapes[i].name),
                         DotQuote(shapes[i].name + "\\n" + config.stages[i].type), shape);
    }
    if (cluster) dot += "  }\n";
  }
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    for (const NodeInput& input : shapes[i].inputs) {
      if (input.node == kSourceNode) {
        dot += fmt::format("  \"(input)\" -> {};\n", DotQuote(shapes[i].name));
        continue;
      }
      const GraphShape& from = shapes[input.node];
      std::string label;
      if (input.port < from.branches.size()) {
        label = fmt::format(" [label={}]", DotQuote(from.branches[input.port]));
      }
      dot += fmt::format("  {} -> {}{};\n", DotQuote(from.name), DotQuote(shapes[i].name),
                         label);
    }
  }
  if (!shapes.empty()) dot += fmt::format("  {} -> \"(end)\";\n", DotQuote(shapes.back().name));
  for (const ReduceNodeSpec& reducer : config.reducers) {
    dot += fmt::format("  {} [label={}, shape=house];\n  \"(end)\" -> {};\n",
                       DotQuote(reducer.spec->name),
                       DotQuote(reducer.spec->name + "\\nreduce"),
                       DotQuote(reducer.spec->name));
  }
  dot += "}\n";
  return dot;
}

}  // namespace sluice
