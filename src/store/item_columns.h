// An item's extra input columns as the stores keep them: a JSON object of strings,
// in input order. Shared by the backends.
#ifndef SLUICE_STORE_ITEM_COLUMNS_H_
#define SLUICE_STORE_ITEM_COLUMNS_H_

#include <string_view>

#include "sluice/record.h"
#include "sluice/status.h"

namespace sluice {

// Adds the members of `columns_json`, an object of strings, to `record` in the order
// they appear in the text. Corruption naming the item when the text is not such an
// object.
Status AddColumnsFromJson(std::string_view columns_json, Record& record);

}  // namespace sluice

#endif  // SLUICE_STORE_ITEM_COLUMNS_H_
