// Fuzzes JsonLineParser (src/input/json_line.h) on one line, against nlohmann::json
// as the reference for what is JSON (both follow RFC 8259 strictly).
//
// The input is the line. Lines that are not acceptable text are left out, as the
// parser REQUIRES, and so are lines that start with a byte order mark (nlohmann skips
// one; input lines never have one: the line reader drops it).
//
// Checked:
//   - a line the parser accepts is a JSON object for nlohmann too; its URL is that
//     object's "url" string without surrounding blanks; its columns are a JSON object
//     of strings holding every other member: a string as it is, any other value as
//     JSON text that reads back as the same value;
//   - a line nlohmann reads is never "invalid JSON" to the parser, unless nested too
//     deeply; "not a JSON object" only for other JSON values;
//   - an object with one non-empty, valid "url" string and no more than kMaxJsonDepth
//     levels is accepted.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "src/input/json_line.h"
#include "src/input/line_text.h"
#include "tests/fuzz/fuzz_check.h"

namespace sluice {
namespace {

// The deepest nesting of objects and arrays in `value`, the value itself counting
// as one level if it is a container.
int Depth(const nlohmann::json& value) {
  if (!value.is_structured()) return 0;
  int deepest = 0;
  for (const auto& element : value) deepest = std::max(deepest, Depth(element));
  return deepest + 1;
}

// nlohmann's reading of `line`: nullopt if it is not JSON to nlohmann; a discarded
// value if it is JSON but out of nlohmann's range (a number too large for a double).
std::optional<nlohmann::json> Reference(std::string_view line) {
  try {
    return nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error&) {
    return std::nullopt;
  } catch (const nlohmann::json::out_of_range&) {
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
}

}  // namespace
}  // namespace sluice

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  if (CheckText(line) != TextProblem::kNone || line.starts_with("\xef\xbb\xbf")) {
    return -1;
  }
  static JsonLineParser parser("url");
  ItemRow item;
  item.url = "stale";
  item.columns_json = "stale";
  const std::string reason(parser.Parse(line, &item));
  const std::optional<nlohmann::json> reference = Reference(line);

  if (reason.empty()) {
    SLUICE_FUZZ_CHECK(reference.has_value());
    if (reference->is_discarded()) return 0;
    SLUICE_FUZZ_CHECK(reference->is_object());
    const auto url = reference->find("url");
    SLUICE_FUZZ_CHECK(url != reference->end() && url->is_string());
    SLUICE_FUZZ_CHECK(TrimBlanks(url->get<std::string>()) == item.url);
    SLUICE_FUZZ_CHECK(!item.url.empty() && CheckText(item.url) == TextProblem::kNone);
    if (reference->size() == 1) {
      SLUICE_FUZZ_CHECK(item.columns_json.empty());
      return 0;
    }
    // Members named twice are both kept in the columns; nlohmann keeps the last of
    // each in both objects, so that they still compare.
    const auto columns = nlohmann::json::parse(item.columns_json, nullptr, false);
    SLUICE_FUZZ_CHECK(columns.is_object());
    SLUICE_FUZZ_CHECK(columns.size() + 1 == reference->size());
    for (const auto& [name, value] : columns.items()) {
      SLUICE_FUZZ_CHECK(value.is_string());
      const auto original = reference->find(name);
      SLUICE_FUZZ_CHECK(original != reference->end());
      if (original->is_string()) {
        SLUICE_FUZZ_CHECK(value == *original);
      } else {
        SLUICE_FUZZ_CHECK(nlohmann::json::parse(value.get<std::string>()) == *original);
      }
    }
    return 0;
  }

  if (reason == "JSON nested too deeply") {
    if (reference.has_value() && !reference->is_discarded()) {
      SLUICE_FUZZ_CHECK(Depth(*reference) > kMaxJsonDepth);
    }
    return 0;
  }
  if (reason == "invalid JSON") {
    SLUICE_FUZZ_CHECK(!reference.has_value() || reference->is_discarded());
    return 0;
  }
  SLUICE_FUZZ_CHECK(reference.has_value());
  if (reason == "not a JSON object") {
    SLUICE_FUZZ_CHECK(reference->is_discarded() || !reference->is_object());
    return 0;
  }
  if (reference->is_discarded()) return 0;
  SLUICE_FUZZ_CHECK(reference->is_object());
  SLUICE_FUZZ_CHECK(Depth(*reference) <= kMaxJsonDepth);
  const auto url = reference->find("url");
  if (reason == "no member 'url'") {
    SLUICE_FUZZ_CHECK(url == reference->end());
  } else if (reason == "member 'url' is not a string") {
    SLUICE_FUZZ_CHECK(url != reference->end());
  } else if (reason == "duplicate member 'url'") {
    SLUICE_FUZZ_CHECK(url != reference->end());
  } else if (reason == "empty URL") {
    SLUICE_FUZZ_CHECK(url != reference->end() && url->is_string());
    SLUICE_FUZZ_CHECK(TrimBlanks(url->get<std::string>()).empty());
  } else {
    // The URL's escapes decode to what no input line may hold.
    SLUICE_FUZZ_CHECK(url != reference->end() && url->is_string());
    SLUICE_FUZZ_CHECK(reason ==
                      TextProblemReason(CheckText(TrimBlanks(url->get<std::string>()))));
  }
  return 0;
}
