// A pipeline's graph as the YAML declares it: reading each node's `input:` or
// `inputs:`, resolving the names, and the checks that name YAML paths (unknown
// names, cycles, the shape rules of src/core/graph_check.h, stage groups cut only
// where the pipeline is one stream). Also the graph printed by `sluice validate
// --graph`, as text and as Graphviz dot.
#ifndef SLUICE_CORE_PIPELINE_GRAPH_H_
#define SLUICE_CORE_PIPELINE_GRAPH_H_

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "src/core/graph_check.h"
#include "src/core/pipeline_config.h"

namespace sluice {

// Reads `input: NAME` or `inputs: [NAME, ...]` of a node's mapping into
// spec.input_refs; errors name spec.path.
void ReadNodeInputs(const YAML::Node& node, StageSpec& spec,
                    std::vector<std::string>* errors);

// Resolves every node's input_refs into inputs, and checks the graph. REQUIRES: the
// nodes parsed without error (their branches known).
void ResolveGraph(PipelineConfig& config, std::vector<std::string>* errors);

// Checks that every field a node reads is written by a node before it, on every
// path there (after a merge, only what all its branches write counts; after a join,
// what its first input has and the fields it takes), and that the output's image
// field is written. A name an expression reads that no node writes may be an input
// column: a warning. Nodes after a stage that does not declare its fields are not
// checked. REQUIRES: ResolveGraph() found no error.
void CheckFields(const PipelineConfig& config, std::vector<std::string>* errors,
                 std::vector<std::string>* warnings);

// Checks that each stage group after the first starts where one stream runs from
// the group before into its first node, and nothing else crosses.
void CheckGroupCuts(const PipelineConfig& config, std::vector<std::string>* errors);

// The graph's nodes as the shape check sees them (inputs resolved).
std::vector<GraphShape> PipelineShapes(const PipelineConfig& config);

// One line per node: "NAME (TYPE) <- INPUTS [-> branches ...]", the stage groups
// when there are several.
std::string GraphText(const PipelineConfig& config);
// The graph in Graphviz dot: nodes by name, edges labelled by branch.
std::string GraphDot(const PipelineConfig& config);

}  // namespace sluice

#endif  // SLUICE_CORE_PIPELINE_GRAPH_H_
