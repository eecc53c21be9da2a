// The rules a pipeline graph obeys, checked before anything runs (docs/operators.md).
//
// Nodes come in an order where each reads only nodes before it, so a graph has no
// cycles by construction (the pipeline loader reports a cycle in the YAML before it
// gets here). On top of that:
//  - every output port is read by exactly one node, except the last node's, which
//    is the end of the pipeline: no branch goes nowhere, and no records are read
//    twice without a copy;
//  - copies and routes nest like brackets: the branches of a copy come together
//    again in one join, which reads every branch once; those of a route (split,
//    shard) in one merge, likewise. A join after a route would wait forever for the
//    branches a record did not take; a merge after a copy would deliver an item
//    twice. Nothing is left open at the end.
// These make each item reach the end of the graph exactly once, which is what
// lets a batch know when it is complete.
#ifndef SLUICE_CORE_GRAPH_CHECK_H_
#define SLUICE_CORE_GRAPH_CHECK_H_

#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "src/core/runtime.h"

namespace sluice {

// NodeInput::node of the first node's input: the records submitted.
inline constexpr std::size_t kSourceNode = std::numeric_limits<std::size_t>::max();

// A node as the check sees it.
struct GraphShape {
  enum class Kind : std::uint8_t { kStage, kCopy, kRoute, kMerge, kJoin };
  std::string name;
  Kind kind = Kind::kStage;
  std::size_t ports = 1;
  std::vector<NodeInput> inputs;  // never empty: the source is kSourceNode
  // The branches' names, for messages ("fork.thumb"); empty: by number.
  std::vector<std::string> branches;
};

struct GraphError {
  std::size_t node = 0;  // the node the message is about
  std::string message;   // names nodes, not YAML paths
};

// Every rule broken, in node order; empty when the graph is sound.
std::vector<GraphError> CheckGraph(const std::vector<GraphShape>& nodes);

// The shapes of runtime nodes, with empty inputs resolved to the node before.
std::vector<GraphShape> ShapesOf(const std::vector<NamedStage>& nodes);

// "fork.thumb", "fork.1", or "fork" for a node with one output.
std::string PortName(const std::vector<GraphShape>& nodes, NodeInput port);

}  // namespace sluice

#endif  // SLUICE_CORE_GRAPH_CHECK_H_
