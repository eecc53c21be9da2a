// Expressions over a record's fields: the predicates and keys of the operators
// (filter, split, shard, ...; docs/operators.md has the language for users).
//
//   expr     := or
//   or       := and ( "||" and )*
//   and      := unary ( "&&" unary )*
//   unary    := "!" unary | compare
//   compare  := primary ( ( "==" | "!=" | "<" | "<=" | ">" | ">=" ) primary )?
//   primary  := NUMBER | STRING | "true" | "false" | NAME | NAME "(" args ")"
//             | "(" expr ")" | "-" NUMBER
//
// A NAME is a field stages wrote (`width`, `http_status`), else the item's input
// column of that name, else missing; `url` is the item's URL and `host` its host
// (as the URL writes it, without userinfo or port), `status` is "ok", "failed" or
// "filtered" and `reason` the failure's reason name (missing when the record has
// not failed), unless a field or column of that name exists. (Only a reduce sees
// failed and filtered records: the other operators see records still on their
// way.) Functions:
// has(NAME), starts_with(a, b), ends_with(a, b), contains(a, b), matches(a, "RE2
// regex", found anywhere in a), len(a) (bytes of a string). Strings are in '...' or
// "..." with \\, \', \", \n, \t escapes.
//
// Values are numbers (integer fields compare as numbers), strings and booleans.
// Comparing two numbers or two strings (bytewise) works as expected, two booleans
// with == and !=; any other comparison, and any comparison with a missing value, is
// false (`!=` too: ask `!has(x)` for absence). As a condition, a missing value, 0,
// "" and false are false.
//
// Parse() checks everything it can at load: syntax, function names and arity,
// regexes (compiled once). Evaluation never allocates: strings are views into the
// record, the tree is a flat vector walked by index.
//
// Thread-safety: a parsed Expr is immutable; Test() and Key() may run concurrently.
#ifndef SLUICE_CORE_EXPR_H_
#define SLUICE_CORE_EXPR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/record.h"
#include "sluice/status.h"

namespace re2 {
class RE2;
}

namespace sluice {

class Expr {
 public:
  // Longer texts are refused: evaluation recurses along the tree, which stays
  // shallow enough for any thread's stack this way.
  static constexpr std::size_t kMaxLength = 4096;

  // The expression in `text` (at most kMaxLength bytes); InvalidArgument
  // "column N: what" (N from 1) when it is not one.
  static Result<Expr> Parse(std::string_view text);

  Expr(Expr&&) noexcept;
  Expr& operator=(Expr&&) noexcept;
  ~Expr();

  // The expression's value as a condition.
  bool Test(const Record& record) const;

  // The expression's value (its strings view the record, or the expression's own
  // literals: valid while both live).
  struct Value;
  Value Evaluate(const Record& record) const;

  // True for the names every record has without a field: url, host, status, reason.
  static bool IsBuiltinName(std::string_view name);

  // The expression's value as a key, hashed (shard: hash mod N): equal values hash
  // alike on every machine; a missing value is a key of its own.
  std::uint64_t KeyHash(const Record& record) const;

  // The names of the fields the expression reads (for validation against the
  // stages upstream), without the built-in names (IsBuiltinName), in order of
  // first use.
  const std::vector<std::string>& fields() const { return fields_; }
  const std::string& text() const { return text_; }

  // A value during evaluation (public for the implementation's helpers).
  struct Value {
    enum class Kind : std::uint8_t { kMissing, kBool, kNumber, kString };
    Kind kind = Kind::kMissing;
    bool boolean = false;
    double number = 0;
    std::string_view text;
  };
  enum class Op : std::uint8_t;
  struct Node {
    Op op;
    std::uint32_t a = 0;  // children (node indices), by op
    std::uint32_t b = 0;
    Value literal;        // kLiteral; for kField, the name in `text`
    std::uint32_t regex = 0;  // kMatches: index into regexes_
  };

 private:
  Expr() = default;
  Value Eval(std::uint32_t node, const Record& record) const;
  friend class ExprParser;

  std::string text_;
  std::vector<std::string> fields_;
  // Literal strings and field names the nodes view (stable: never resized after
  // parsing; each a std::string of its own).
  std::vector<std::unique_ptr<std::string>> strings_;
  std::vector<Node> nodes_;
  std::vector<std::unique_ptr<re2::RE2>> regexes_;
  std::uint32_t root_ = 0;
};

// The host of a URL, as `host` in an expression (a view into `url`): without
// userinfo or port, an IPv6 literal with its brackets; "" without "://".
std::string_view UrlHost(std::string_view url);

}  // namespace sluice

#endif  // SLUICE_CORE_EXPR_H_
