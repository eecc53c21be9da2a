#include "src/core/graph_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace sluice {
namespace {

using Kind = GraphShape::Kind;

// One open fork around a port: the copy or route it came from, and which branch.
struct Frame {
  std::size_t fork = 0;
  std::size_t branch = 0;
  bool operator==(const Frame&) const = default;
};
using Context = std::vector<Frame>;

bool IsFork(Kind kind) { return kind == Kind::kCopy || kind == Kind::kRoute; }
bool IsCloser(Kind kind) { return kind == Kind::kMerge || kind == Kind::kJoin; }

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kStage:
      return "stage";
    case Kind::kCopy:
      return "copy";
    case Kind::kRoute:
      return "split or shard";
    case Kind::kMerge:
      return "merge";
    case Kind::kJoin:
      return "join";
  }
  return "node";
}

// Checks that a merge or join closes exactly one fork, every branch once, and
// returns the context after it.
Context CloseFork(const std::vector<GraphShape>& nodes, std::size_t node,
                  const std::vector<Context>& inputs, std::vector<GraphError>* errors) {
  const GraphShape& closer = nodes[node];
  auto error = [&](std::string message) {
    errors->push_back(GraphError{node, std::move(message)});
  };
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    if (inputs[k].empty()) {
      error(fmt::format(
          "input '{}' is not a branch of a copy or a split: a {} brings back together "
          "the branches of one {}",
          PortName(nodes, closer.inputs[k]), KindName(closer.kind),
          closer.kind == Kind::kJoin ? "copy" : "split or shard"));
      return {};
    }
  }
  const Frame top = inputs[0].back();
  const GraphShape& fork = nodes[top.fork];
  Context outer(inputs[0].begin(), inputs[0].end() - 1);
  std::set<std::size_t> branches;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    const Frame& frame = inputs[k].back();
    const Context prefix(inputs[k].begin(), inputs[k].end() - 1);
    if (frame.fork != top.fork || prefix != outer) {
      error(fmt::format(
          "inputs '{}' and '{}' are not branches of the same fork ('{}' and '{}'): a "
          "{} takes the branches of one copy, split or shard",
          PortName(nodes, closer.inputs[0]), PortName(nodes, closer.inputs[k]),
          fork.name, nodes[frame.fork].name, KindName(closer.kind)));
      return outer;
    }
    if (!branches.insert(frame.branch).second) {
      error(fmt::format("branch '{}' of '{}' comes in twice",
                        PortName(nodes, NodeInput{top.fork, frame.branch}), fork.name));
      return outer;
    }
  }
  if (closer.kind == Kind::kJoin && fork.kind != Kind::kCopy) {
    error(fmt::format(
        "'{}' is a {}: it sends each record to one branch, so a join would wait "
        "forever for the others; bring its branches together with a merge",
        fork.name, KindName(fork.kind)));
  } else if (closer.kind == Kind::kMerge && fork.kind != Kind::kRoute) {
    error(fmt::format(
        "'{}' is a copy: a merge would let each item through once per branch; bring "
        "its branches together with a join",
        fork.name));
  } else if (branches.size() != fork.ports) {
    std::vector<std::string> missing;
    for (std::size_t b = 0; b < fork.ports; ++b) {
      if (!branches.contains(b)) missing.push_back(PortName(nodes, NodeInput{top.fork, b}));
    }
    error(fmt::format("takes {} of the {} branches of '{}' (missing: {}); a {} takes "
                      "them all",
                      branches.size(), fork.ports, fork.name, fmt::join(missing, ", "),
                      KindName(closer.kind)));
  }
  return outer;
}

}  // namespace

std::string PortName(const std::vector<GraphShape>& nodes, NodeInput port) {
  if (port.node == kSourceNode) return "the input";
  if (port.node >= nodes.size()) return fmt::format("node {}", port.node);
  const GraphShape& node = nodes[port.node];
  if (node.ports <= 1) return node.name;
  if (port.port < node.branches.size()) {
    return fmt::format("{}.{}", node.name, node.branches[port.port]);
  }
  return fmt::format("{}.{}", node.name, port.port);
}

std::vector<GraphError> CheckGraph(const std::vector<GraphShape>& nodes) {
  std::vector<GraphError> errors;
  if (nodes.empty()) {
    errors.push_back(GraphError{0, "the pipeline has no nodes"});
    return errors;
  }
  // For each node and port, the context of its records and who reads them.
  std::vector<std::vector<Context>> out(nodes.size());
  std::vector<std::vector<std::vector<std::size_t>>> readers(nodes.size());
  std::vector<std::size_t> source_readers;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const GraphShape& node = nodes[i];
    auto error = [&](std::string message) {
      errors.push_back(GraphError{i, std::move(message)});
    };
    readers[i].resize(std::max<std::size_t>(node.ports, 1));
    out[i].resize(std::max<std::size_t>(node.ports, 1));
    if (node.ports == 0) error("has no outputs");
    if (IsFork(node.kind) && node.ports < 2) {
      error(fmt::format("a {} needs two branches or more", KindName(node.kind)));
    }
    if (!IsFork(node.kind) && node.ports > 1) {
      error(fmt::format("a {} has one output, not {}", KindName(node.kind), node.ports));
    }
    if (IsCloser(node.kind) && node.inputs.size() < 2) {
      error(fmt::format("a {} reads two inputs or more", KindName(node.kind)));
    } else if (!IsCloser(node.kind) && node.inputs.size() != 1) {
      error(fmt::format("a {} reads one input, not {}; only merge and join read several",
                        KindName(node.kind), node.inputs.size()));
    }
    std::vector<Context> in;
    bool inputs_ok = true;
    for (const NodeInput& input : node.inputs) {
      if (input.node == kSourceNode) {
        source_readers.push_back(i);
        in.emplace_back();
        continue;
      }
      if (input.node >= i) {
        error(fmt::format("reads '{}', which does not come before it",
                          input.node < nodes.size() ? nodes[input.node].name
                                                    : std::to_string(input.node)));
        inputs_ok = false;
        continue;
      }
      if (input.port >= readers[input.node].size()) {
        error(fmt::format("reads output {} of '{}', which has {}", input.port,
                          nodes[input.node].name, readers[input.node].size()));
        inputs_ok = false;
        continue;
      }
      readers[input.node][input.port].push_back(i);
      in.push_back(out[input.node][input.port]);
    }
    Context context;
    if (!in.empty() && inputs_ok) {
      context = IsCloser(node.kind) && in.size() >= 2 ? CloseFork(nodes, i, in, &errors)
                                                      : in[0];
    }
    for (std::size_t port = 0; port < out[i].size(); ++port) {
      out[i][port] = context;
      if (IsFork(node.kind)) out[i][port].push_back(Frame{i, port});
    }
  }
  if (source_readers.size() != 1 || source_readers[0] != 0) {
    for (std::size_t reader : source_readers) {
      if (reader != 0) {
        errors.push_back(
            GraphError{reader, "reads the input, which only the first node reads"});
      }
    }
  }
  const std::size_t last = nodes.size() - 1;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    for (std::size_t port = 0; port < readers[i].size(); ++port) {
      const std::vector<std::size_t>& by = readers[i][port];
      const bool is_end = i == last && nodes[i].ports == 1;
      const std::string name = PortName(nodes, NodeInput{i, port});
      if (by.empty() && !is_end) {
        errors.push_back(GraphError{
            i, IsFork(nodes[i].kind)
                   ? fmt::format("nothing reads branch '{}': each branch ends in the "
                                 "join or merge that brings the branches together",
                                 name)
                   : fmt::format("nothing reads the records of '{}' (only the last "
                                 "node ends the pipeline)",
                                 name)});
      } else if (by.size() > 1) {
        errors.push_back(GraphError{
            by[1], fmt::format("'{}' is read by both '{}' and '{}': a node's records go "
                               "to one place; put a copy after it to send them to several",
                               name, nodes[by[0]].name, nodes[by[1]].name)});
      }
    }
  }
  if (!out[last].empty() && !out[last][0].empty()) {
    const GraphShape& fork = nodes[out[last][0].back().fork];
    errors.push_back(GraphError{
        last, fmt::format("the branches of '{}' are still apart at the end of the "
                          "pipeline: bring them together with a {}",
                          fork.name, fork.kind == Kind::kCopy ? "join" : "merge")});
  }
  std::stable_sort(errors.begin(), errors.end(),
                   [](const GraphError& a, const GraphError& b) { return a.node < b.node; });
  return errors;
}

std::vector<GraphShape> ShapesOf(const std::vector<NamedStage>& nodes) {
  std::vector<GraphShape> shapes;
  shapes.reserve(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const NamedStage& node = nodes[i];
    GraphShape& shape = shapes.emplace_back();
    shape.name = node.name;
    if (node.op != nullptr) {
      switch (node.op->kind) {
        case Operator::Kind::kCopy:
          shape.kind = Kind::kCopy;
          break;
        case Operator::Kind::kRoute:
          shape.kind = Kind::kRoute;
          break;
        case Operator::Kind::kMerge:
          shape.kind = Kind::kMerge;
          break;
        case Operator::Kind::kJoin:
          shape.kind = Kind::kJoin;
          break;
      }
      shape.ports = node.op->ports;
    }
    shape.inputs = node.inputs;
    if (shape.inputs.empty()) {
      shape.inputs.push_back(i == 0 ? NodeInput{kSourceNode, 0} : NodeInput{i - 1, 0});
    }
  }
  return shapes;
}

}  // namespace sluice
