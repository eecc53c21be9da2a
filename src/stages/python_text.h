// Python 3's text forms of values, for output that must equal what a Python tool
// writes byte for byte (the exif field, src/stages/exif.h): repr() of floats, bytes
// and one-character strings, str.strip(), strict UTF-8 decoding and json.dumps()
// of a string. They follow CPython 3.11.
//
// Strings are UTF-8. Functions that read UTF-8 REQUIRE it to be valid (as
// IsStrictUtf8 checks); an invalid byte is read as U+FFFD rather than past the end.
// All functions are pure and thread-safe.
#ifndef SLUICE_STAGES_PYTHON_TEXT_H_
#define SLUICE_STAGES_PYTHON_TEXT_H_

#include <string>
#include <string_view>

namespace sluice {

// repr(float): the shortest digits that read back as `value`, in fixed notation
// from 1e-4 up to 1e16 ("0.0001", "2.0", "1234567890123456.0") and in exponent
// notation outside it ("1e-05", "1.5e+16"); "nan", "inf", "-inf", "-0.0".
std::string PythonFloatRepr(double value);

// repr(bytes): b'...' (b"..." when the bytes hold ' but no "), with \\, \', \t, \n,
// \r and \xNN (lower-case hex) for the other bytes outside 0x20..0x7E.
std::string PythonBytesRepr(std::string_view bytes);

// repr() of the one-character str `code_point`: 'a', "'", '\\', '\n', '\x01',
// '\x85'. Code points from U+0100 are written as they are: Python escapes those it
// does not count printable (unassigned, format and separator characters), which
// this does not tell apart.
std::string PythonCharRepr(char32_t code_point);

// Whether bytes.decode('utf-8') succeeds: well-formed UTF-8 with no overlong
// forms, no surrogates and nothing above U+10FFFF.
bool IsStrictUtf8(std::string_view bytes);

// Appends `code_point` (at most U+10FFFF, not a surrogate) encoded as UTF-8.
void AppendUtf8(char32_t code_point, std::string& out);

// The code points of UTF-8 `text`.
std::u32string DecodeUtf8(std::string_view text);

// str.strip() with no argument: `text` without the leading and trailing characters
// str.isspace() is true for (ASCII whitespace, U+001C..U+001F, U+0085, U+00A0 and
// the Unicode spaces and separators).
std::string_view PythonStrip(std::string_view text);

// Appends json.dumps(text) with its default ensure_ascii: in double quotes, \" and
// \\, \n \r \t \b \f, every other character outside 0x20..0x7E as \u00XX
// (lower-case hex), above U+FFFF as a surrogate pair.
void AppendJsonString(std::string_view text, std::string& out);

}  // namespace sluice

#endif  // SLUICE_STAGES_PYTHON_TEXT_H_
