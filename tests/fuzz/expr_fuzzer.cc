// Fuzzes the expression language of the operators (src/core/expr.h): any text either
// parses or is refused with a "column N:" message within the text, never a crash or
// a hang. What parses evaluates on a record with fields of every kind, gives the same
// answer when parsed again, lists no built-in among the fields it reads, and its
// negation "!(...)" gives the opposite answer.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/core/expr.h"
#include "tests/fuzz/fuzz_check.h"

namespace sluice {
namespace {

Record Probe() {
  Record record(1, "http://user@example.com:8080/a/b.jpg?x=1");
  record.AddColumn("caption", "a cat");
  record.Set("width", std::int64_t{640});
  record.Set("ratio", 0.75);
  record.Set("content_type", std::string("image/jpeg"));
  record.Set("animated", true);
  record.Set("bytes", Bytes{1, 2});
  record.Set("boxes", JsonText{"[[1,2,3,4]]"});
  return record;
}

}  // namespace
}  // namespace sluice

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using sluice::Expr;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  sluice::Result<Expr> expr = Expr::Parse(text);
  if (!expr.ok()) {
    const std::string message = expr.ToStatus().message();
    SLUICE_FUZZ_CHECK(message.starts_with("column ") || message.starts_with("an expression of"));
    return 0;
  }
  static const sluice::Record probe = sluice::Probe();
  const bool answer = expr->Test(probe);
  for (const std::string& field : expr->fields()) {
    SLUICE_FUZZ_CHECK(field != "url" && field != "host" && !field.empty());
  }
  sluice::Result<Expr> again = Expr::Parse(text);
  SLUICE_FUZZ_CHECK(again.ok());
  SLUICE_FUZZ_CHECK(again->Test(probe) == answer);
  // Its negation, where that still fits (length and depth).
  sluice::Result<Expr> negated = Expr::Parse("!(" + std::string(text) + "\n)");
  if (negated.ok()) SLUICE_FUZZ_CHECK(negated->Test(probe) == !answer);
  return 0;
}
