#include "src/core/result_json.h"

#include <set>
#include <variant>

namespace sluice {
namespace {

const std::set<std::string, std::less<>> kFixedKeys = {"id",     "url",   "status",
                                                       "reason", "error", "input"};

}  // namespace

OrderedJson ResultValueJson(const Value& value) {
  if (const auto* flag = std::get_if<bool>(&value)) return *flag;
  if (const auto* number = std::get_if<std::int64_t>(&value)) return *number;
  if (const auto* real = std::get_if<double>(&value)) return *real;
  if (const auto* text = std::get_if<std::string>(&value)) return *text;
  if (const auto* json = std::get_if<JsonText>(&value)) {
    OrderedJson parsed = OrderedJson::parse(json->text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) return json->text;  // a stage's bug: kept as text
    return parsed;
  }
  return nullptr;
}

std::string ResultFieldKey(std::string_view name) {
  if (kFixedKeys.contains(name)) return "field." + std::string(name);
  return std::string(name);
}

void AddResultFields(const Record& record, OrderedJson& object, bool prefix_fixed_keys) {
  for (const auto& [name, value] : record.fields()) {
    if (!IsResultValue(value)) continue;
    object[prefix_fixed_keys ? ResultFieldKey(name) : name] = ResultValueJson(value);
  }
}

std::string ResultFieldsJson(const Record& record) {
  OrderedJson object = OrderedJson::object();
  AddResultFields(record, object, /*prefix_fixed_keys=*/false);
  if (object.empty()) return "";
  return DumpJson(object);
}

std::string DumpJson(const OrderedJson& json, int indent) {
  return json.dump(indent, ' ', false, OrderedJson::error_handler_t::replace);
}

}  // namespace sluice
