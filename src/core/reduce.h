// reduce: per-key aggregates over the records a pipeline ends with
// (docs/operators.md has the YAML for users).
//
//   - name: per_host
//     type: reduce
//     group_by: host              # an expression: its value is the group's key
//     aggregates:
//       ok: {count: "status == 'ok'"}
//       success_rate: {mean: "status == 'ok'"}
//       faces: {sum: faces, where: "status == 'ok'"}
//       most_faces: {max: faces}
//       faces_histogram: {histogram: faces, buckets: [0, 1, 2, 5]}
//     max_groups: 10000           # keys beyond these are folded into "other"
//     order_by: ok                # the output's order (default: by key) ...
//     limit: 100                  # ... and how many groups it shows (0: all)
//     emit_seconds: 60            # a view of the work so far, this often (0: never)
//
// A reduce node comes after every other node: it sees every record the pipeline
// ends with (ok, failed and filtered: `status` and `reason` tell them apart).
//
// The state is a ReduceTable: per key, the number of records and one Aggregate per
// aggregate spec, at most max_groups keys. Tables merge (the fold of two record
// sets is the merge of their folds), which is how a run's result is made: each
// batch's table is folded from its records in id order and committed with the batch
// (src/output/reduce_output.h), and the run's result is the merge of every batch's
// table in batch order, the same whatever the interleaving of the batches.
//
// Thread-safety: a ReduceSpec is immutable and may be shared; a ReduceTable is not
// thread-safe.
#ifndef SLUICE_CORE_REDUCE_H_
#define SLUICE_CORE_REDUCE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sluice/record.h"
#include "sluice/status.h"
#include "src/core/expr.h"
#include "src/core/result_json.h"
#include "src/core/yaml_options.h"

namespace sluice {

enum class AggregateKind : std::uint8_t {
  kCount,      // "count: COND": the records for which COND is true
  kSum,        // "sum: NUMBER": the sum of the values
  kMin,        // "min: NUMBER"
  kMax,        // "max: NUMBER"
  kMean,       // "mean: NUMBER": sum / count of the values (a rate, for a condition)
  kHistogram,  // "histogram: NUMBER, buckets: [B0, B1, ...]": values <= B0, <= B1, ...
};

struct AggregateSpec {
  std::string name;
  AggregateKind kind = AggregateKind::kCount;
  // count: the condition; the others: the value, a number (true and false count as
  // 1 and 0; a record whose value is anything else is left out).
  std::shared_ptr<const Expr> value;
  std::shared_ptr<const Expr> where;  // "where": only records it is true for; may be null
  std::vector<double> buckets;        // histogram: upper bounds, ascending
};

struct ReduceSpec {
  std::string name;  // the node's name: the output's file name
  std::string path;  // YAML path for messages, e.g. "stages[5] (per_host)"
  std::shared_ptr<const Expr> group_by;  // null: one group for everything
  std::vector<AggregateSpec> aggregates;
  std::size_t max_groups = 10000;  // keys kept; records of further keys go to "other"
  std::string order_by;            // "": by key; "items" or an aggregate's name
  std::size_t limit = 0;           // groups in the output; 0: all
  std::chrono::milliseconds emit_every{0};  // periodic view; 0: only the final one
  std::vector<std::string> reads;  // names its expressions read (field check)
};

// Reads a reduce node's options (not name, type, input or inputs). Errors are
// appended to `errors` (the list `options` writes to) with YAML paths; the first is
// returned.
Result<std::shared_ptr<const ReduceSpec>> ParseReduce(const std::string& name,
                                                      YamlOptions& options,
                                                      std::vector<std::string>* errors);

// One aggregate's state; which members matter depends on the kind.
struct Aggregate {
  std::uint64_t count = 0;  // values (count: records) taken in
  double sum = 0;
  double min = 0;  // valid when count > 0
  double max = 0;
  std::vector<std::uint64_t> buckets;  // histogram: buckets.size() + 1 counts
};

// One key's state.
struct ReduceGroup {
  std::uint64_t items = 0;  // records folded in
  std::vector<Aggregate> aggregates;  // one per ReduceSpec::aggregates
};

class ReduceTable {
 public:
  explicit ReduceTable(std::shared_ptr<const ReduceSpec> spec);

  // Folds one record in.
  void Add(const Record& record);
  // Folds another table of the same spec in: the same as having added its records
  // after this one's.
  void Merge(const ReduceTable& other);

  std::uint64_t items() const;  // records folded in, "other" included
  std::size_t group_count() const { return groups_.size(); }
  const ReduceSpec& spec() const { return *spec_; }

  // The exact state, for a batch's committed part; FromStateJson() reads it back
  // (Corruption naming `where` when it is not what StateJson() wrote).
  OrderedJson StateJson() const;
  static Result<ReduceTable> FromStateJson(std::shared_ptr<const ReduceSpec> spec,
                                           const nlohmann::json& state,
                                           const std::string& where);

  // The result for people and programs: the groups (ordered and limited as the
  // spec says) with each aggregate's value, and "other" when keys overflowed.
  OrderedJson ResultJson() const;

  // The key `record` falls in, as JSON text ("null" when the key is missing).
  std::string KeyOf(const Record& record) const;
  // Folds a one-record group (from GroupOf) under `key`.
  void AddGroup(const std::string& key, const ReduceGroup& group);
  // The state of `record` alone.
  ReduceGroup GroupOf(const Record& record) const;
  // One group's exact state as JSON, and back (Corruption naming `where`).
  OrderedJson GroupStateJson(const ReduceGroup& group) const;
  Result<ReduceGroup> GroupFromStateJson(const nlohmann::json& state,
                                         const std::string& where) const;

 private:
  ReduceGroup NewGroup() const;
  void MergeInto(ReduceGroup& into, const ReduceGroup& from) const;

  std::shared_ptr<const ReduceSpec> spec_;
  std::map<std::string, ReduceGroup> groups_;  // by key's JSON text
  ReduceGroup other_;                          // records of keys beyond max_groups
};

}  // namespace sluice

#endif  // SLUICE_CORE_REDUCE_H_
