// Record values as JSON: the one place where a record's results become the JSON
// the store keeps (ResultRow::fields_json), the metadata lines and WebDataset
// KEY.json files carry (src/output/batch_metadata.h), and `sluice export` writes
// (from the store's JSON), so that all of them have the same fields, in the same
// order (the record's), with the same types: a number as a number, a list or an
// object (JsonText) as a JSON array or object.
#ifndef SLUICE_CORE_RESULT_JSON_H_
#define SLUICE_CORE_RESULT_JSON_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "sluice/record.h"

namespace sluice {

using OrderedJson = nlohmann::ordered_json;

// The JSON of a result value; null for one that is not a result (unset, Bytes, a
// Payload).
OrderedJson ResultValueJson(const Value& value);

// The key a result field is written under next to the fixed keys of a metadata line
// or an export row (id, url, status, reason, error, input): its name, or
// "field.NAME" when it would shadow one of them.
std::string ResultFieldKey(std::string_view name);

// Adds `record`'s result fields to `object`, in the record's order, each under
// ResultFieldKey(name) when `prefix_fixed_keys`, else under its name.
void AddResultFields(const Record& record, OrderedJson& object, bool prefix_fixed_keys);

// The JSON object of `record`'s result fields, as the store keeps it ("" when there
// are none).
std::string ResultFieldsJson(const Record& record);

// `json` as text, invalid UTF-8 (from a stage or an input) replaced, never thrown on.
std::string DumpJson(const OrderedJson& json, int indent = -1);

}  // namespace sluice

#endif  // SLUICE_CORE_RESULT_JSON_H_
