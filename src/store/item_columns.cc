#include "src/store/item_columns.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>

namespace sluice {

Status AddColumnsFromJson(std::string_view columns_json, Record& record) {
  // ordered_json keeps the text's order; plain json would sort the members.
  auto columns = nlohmann::ordered_json::parse(columns_json, /*cb=*/nullptr,
                                               /*allow_exceptions=*/false);
  if (!columns.is_object()) {  // also a parse error ("discarded" value)
    return Corruption(fmt::format("item {}: columns are not a JSON object", record.id()));
  }
  for (auto it = columns.begin(); it != columns.end(); ++it) {
    if (!it.value().is_string()) {
      return Corruption(
          fmt::format("item {}: column {} is not a JSON string", record.id(), it.key()));
    }
    record.AddColumn(it.key(), it.value().get_ref<const std::string&>());
  }
  return Status::Ok();
}

}  // namespace sluice
