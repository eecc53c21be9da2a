// ReduceBatchPart: what one batch adds to a reduce (src/core/reduce.h), committed
// with the batch so that the run's result counts every item once, after crashes and
// retries too.
//
// A part holds the settled records of the batch's first whole attempt (ok and
// filtered: never redone) folded into one table, and every other record's own state
// by item id: the failed ones, because `sluice retry` redoes failed items alone, and
// all those of a redo in part. A batch redone in part replaces the redone items'
// states and keeps the rest, also when the part it starts from is that of an
// attempt in part that crashed before its commit (whose items are all by id, and
// redone again). The part of a batch redone whole replaces the earlier part (the
// files are named by batch: src/output/reduce_output.h).
//
// Thread-safety: not thread-safe; a part is made and read on one thread.
#ifndef SLUICE_CORE_REDUCE_PART_H_
#define SLUICE_CORE_REDUCE_PART_H_

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "sluice/record.h"
#include "sluice/status.h"
#include "src/core/reduce.h"

namespace sluice {

class ReduceBatchPart {
 public:
  // The part of a batch of `item_count` items whose records (sorted by id) are
  // `records`. `earlier` is the part committed before when `records` redo only some
  // of the batch's items (nullptr for a batch done whole): the items not redone keep
  // what they added. Corruption when the counts do not add up (a redone item that
  // was not failed before would count twice).
  static Result<ReduceBatchPart> Make(std::shared_ptr<const ReduceSpec> spec,
                                      std::uint32_t item_count,
                                      std::span<const Record> records,
                                      const ReduceBatchPart* earlier);

  // The part as JSON, and back (Corruption naming `where`).
  OrderedJson ToJson() const;
  static Result<ReduceBatchPart> FromJson(std::shared_ptr<const ReduceSpec> spec,
                                          const nlohmann::json& json,
                                          const std::string& where);

  // Everything the part adds: the settled records, then the others by id.
  ReduceTable Table() const;

  // Records it covers.
  std::uint64_t items() const { return settled_.items() + rows_.size(); }

 private:
  explicit ReduceBatchPart(std::shared_ptr<const ReduceSpec> spec)
      : settled_(std::move(spec)) {}

  ReduceTable settled_;
  // The records kept one by one (see the top): their keys and states, by item id.
  std::map<ItemId, std::pair<std::string, ReduceGroup>> rows_;
};

}  // namespace sluice

#endif  // SLUICE_CORE_REDUCE_PART_H_
