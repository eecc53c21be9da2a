#include "src/core/reduce_part.h"

#include <fmt/format.h>

#include <set>

namespace sluice {
namespace {

// Records `sluice retry` may redo.
bool Redoable(const Record& record) {
  return record.failed() && record.reason() != FailureReason::kFiltered;
}

}  // namespace

Result<ReduceBatchPart> ReduceBatchPart::Make(std::shared_ptr<const ReduceSpec> spec,
                                              std::uint32_t item_count,
                                              std::span<const Record> records,
                                              const ReduceBatchPart* earlier) {
  ReduceBatchPart part(spec);
  std::set<ItemId> redone;
  for (const Record& record : records) redone.insert(record.id());
  if (earlier != nullptr) {
    part.settled_.Merge(earlier->settled_);
    for (const auto& [id, row] : earlier->rows_) {
      if (redone.count(id) == 0) part.rows_.emplace(id, row);
    }
  }
  for (const Record& record : records) {
    if (earlier != nullptr || Redoable(record)) {
      part.rows_[record.id()] = {part.settled_.KeyOf(record),
                                   part.settled_.GroupOf(record)};
    } else {
      part.settled_.Add(record);
    }
  }
  if (earlier != nullptr && part.items() != item_count) {
    return Corruption(fmt::format(
        "reduce {}: {} records redone, {} kept from the batch's earlier part: {} items, "
        "the batch has {} (an item redone that had not failed would count twice)",
        spec->name, records.size(), part.items() - records.size(), part.items(),
        item_count));
  }
  return part;
}

OrderedJson ReduceBatchPart::ToJson() const {
  OrderedJson rows = OrderedJson::array();
  for (const auto& [id, row] : rows_) {
    rows.push_back(OrderedJson::array(
        {id, OrderedJson::parse(row.first), settled_.GroupStateJson(row.second)}));
  }
  OrderedJson json;
  json["settled"] = settled_.StateJson();
  json["rows"] = std::move(rows);
  return json;
}

Result<ReduceBatchPart> ReduceBatchPart::FromJson(std::shared_ptr<const ReduceSpec> spec,
                                                  const nlohmann::json& json,
                                                  const std::string& where) {
  ReduceBatchPart part(spec);
  if (!json.is_object() || !json.contains("settled") || !json.contains("rows") ||
      !json["rows"].is_array()) {
    return Corruption(fmt::format("{}: not a reduce part: expected settled and rows",
                                  where));
  }
  Result<ReduceTable> settled = ReduceTable::FromStateJson(spec, json["settled"], where);
  if (!settled.ok()) return settled.status();
  part.settled_ = std::move(settled).value();
  for (const nlohmann::json& row : json["rows"]) {
    if (!row.is_array() || row.size() != 3 || !row[0].is_number_unsigned()) {
      return Corruption(
          fmt::format("{}: not a reduce part: a row is not [id, key, state]", where));
    }
    Result<ReduceGroup> group = part.settled_.GroupFromStateJson(row[2], where);
    if (!group.ok()) return group.status();
    part.rows_[row[0].get<ItemId>()] = {DumpJson(OrderedJson(row[1])),
                                          std::move(group).value()};
  }
  return part;
}

ReduceTable ReduceBatchPart::Table() const {
  ReduceTable table = settled_;
  for (const auto& [id, row] : rows_) table.AddGroup(row.first, row.second);
  return table;
}

}  // namespace sluice
