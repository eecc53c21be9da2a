// JsonLineParser: one JSONL line, a JSON object, into an ItemRow.
//
// A strict RFC 8259 parser written for this one job, because a general JSON library
// builds a document of every line, which costs ten times the parse itself: this one
// decodes the member names and string values into reused buffers and copies every
// other value's text, compacted, straight into ItemRow::columns_json. Numbers keep
// the digits they were written with (a 30-digit id stays a 30-digit id).
//
// What the line must be: one JSON object (reason "not a JSON object" for any other
// JSON value, "invalid JSON" for what is not JSON), nested at most kMaxJsonDepth
// deep ("JSON nested too deeply"), with the URL member once ("no member 'url'",
// "duplicate member 'url'") holding a non-empty string ("member 'url' is not a
// string", "empty URL") without control characters once its escapes are decoded.
//
// Not thread-safe: one parser per thread.
#ifndef SLUICE_INPUT_JSON_LINE_H_
#define SLUICE_INPUT_JSON_LINE_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "sluice/store.h"

namespace sluice {

// Objects and arrays nested deeper than this are rejected; the line's own object
// counts as one level.
inline constexpr int kMaxJsonDepth = 64;

class JsonLineParser {
 public:
  explicit JsonLineParser(std::string url_member);

  // Fills *item from `line` and returns "", or returns why the line is rejected (the
  // view stays valid until the next call). REQUIRES: `line` passed CheckText (valid
  // UTF-8, no control characters but tab).
  std::string_view Parse(std::string_view line, ItemRow* item);

 private:
  void SkipSpace();
  // Parses a string at pos_ (on its opening quote). Appends its decoded value to
  // `decoded` if not null, and its text as written (quotes included) to `raw` if not
  // null.
  bool ParseString(std::string* decoded, std::string* raw);
  bool ParseNumber(std::string* raw);
  bool ParseLiteral(std::string_view literal, std::string* raw);
  // Parses any value at pos_, appending its compact text to `compact` if not null.
  bool ParseValue(int depth, std::string* compact);
  bool ParseContainer(int depth, std::string* compact);

  const std::string url_member_;
  const std::string no_url_reason_;
  const std::string url_not_string_reason_;
  const std::string duplicate_url_reason_;

  std::string_view text_;
  std::size_t pos_ = 0;
  bool too_deep_ = false;
  std::string name_;   // the member name being read
  std::string value_;  // the member value being read
};

}  // namespace sluice

#endif  // SLUICE_INPUT_JSON_LINE_H_
