// The text of input lines: what is acceptable, how to show it, how to quote it.
//
// Every input line must be UTF-8 without control characters (tab excepted) before
// anything else looks at it; this is what keeps binary garbage from reaching the
// store or a JSON document. Excerpts show a rejected line to a human; JSON quoting
// builds ItemRow::columns_json without a JSON library on the hot path.
//
// Functions here are pure and thread-safe.
#ifndef SLUICE_INPUT_LINE_TEXT_H_
#define SLUICE_INPUT_LINE_TEXT_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace sluice {

// Why a line's bytes are not acceptable text.
enum class TextProblem {
  kNone,
  kInvalidUtf8,       // a byte sequence that is not UTF-8 (overlong, surrogate, ...)
  kControlCharacter,  // an ASCII control byte other than tab: NUL, CR, ESC, DEL, ...
};

// The reason recorded for a rejected line: "invalid UTF-8", "control character".
// REQUIRES: problem != kNone.
std::string_view TextProblemReason(TextProblem problem);

// Returns the first problem found in `text`, or kNone.
TextProblem CheckText(std::string_view text);

// Returns `text` without leading and trailing spaces and tabs.
std::string_view TrimBlanks(std::string_view text);

// How many bytes of a line an excerpt shows.
inline constexpr std::size_t kExcerptBytes = 80;

// Returns the first kExcerptBytes bytes of `line`, made printable: printable ASCII and
// well-formed multi-byte UTF-8 are kept, a backslash is written "\\", every other byte
// "\xNN"; "..." is appended when `line` is longer.
std::string MakeExcerpt(std::string_view line);

// Appends `text` to `out` as a JSON string literal, quotes included.
// REQUIRES: `text` is valid UTF-8 (CheckText found no kInvalidUtf8).
void AppendJsonString(std::string_view text, std::string* out);

// Adds a member to a JSON object of strings under construction in `json`, which is
// empty (no member yet) or was built by earlier calls. Finish with CloseJsonObject.
void AppendJsonMember(std::string_view name, std::string_view value, std::string* json);

// Closes the object: appends "}" unless `json` is empty, which stays "" (no members).
void CloseJsonObject(std::string* json);

}  // namespace sluice

#endif  // SLUICE_INPUT_LINE_TEXT_H_
