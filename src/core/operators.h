// The operators a pipeline YAML declares between its stages (docs/operators.md):
//
//   - {name: fork, type: copy, branches: [faces, thumb]}
//   - {name: route, type: split, branches: [{name: big, when: "width >= 1024"},
//                                           {name: rest}]}
//   - {name: by_host, type: shard, key: host, shards: 4}     # branches 0 .. 3
//   - {type: merge, inputs: [shrink, keep]}
//   - {type: join, inputs: [detect, thumb_jpeg], fields: {thumb_jpeg: [thumb]}}
//
// A node reads the node before it unless it says `input: NAME` (NAME.BRANCH for a
// branch of a copy, split or shard); merge and join say `inputs: [...]`. The shape
// rules (every copy joined, every split merged, no branch left open) are
// src/core/graph_check.h's.
#ifndef SLUICE_CORE_OPERATORS_H_
#define SLUICE_CORE_OPERATORS_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/status.h"
#include "src/core/graph_check.h"
#include "src/core/runtime.h"
#include "src/core/yaml_options.h"

namespace sluice {

// True for copy, split, shard, merge and join.
bool IsOperatorType(std::string_view type);

// The shape an operator type has (GraphShape::Kind).
GraphShape::Kind OperatorShape(std::string_view type);

// An operator and the names of its branches (copy, split, shard; empty otherwise).
struct BuiltOperator {
  std::shared_ptr<const Operator> op;
  std::vector<std::string> branches;
  // The names its expressions read (split's conditions, shard's key).
  std::vector<std::string> reads_or_columns;
};

// Reads an operator's options (not name, type, input or inputs) and builds it.
// `inputs` are the references the node reads, as written (a join's `fields` are
// keyed by them). Errors are appended to `errors` (the list `options` writes to),
// name the YAML path, and the first of them is returned. REQUIRES:
// IsOperatorType(type).
Result<BuiltOperator> BuildOperator(std::string_view type, const std::string& name,
                                    const std::vector<std::string>& inputs,
                                    YamlOptions& options, std::vector<std::string>* errors);

}  // namespace sluice

#endif  // SLUICE_CORE_OPERATORS_H_
