#include "src/core/expr.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>

namespace sluice {

enum class Expr::Op : std::uint8_t {
  kLiteral,
  kField,  // literal.text: the name (or url, host)
  kNot,
  kAnd,
  kOr,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kHas,  // literal.text: the name
  kStartsWith,
  kEndsWith,
  kContains,
  kMatches,
  kLen,
};

namespace {

using Kind = Expr::Value::Kind;
using Op = Expr::Op;

// Deeper nesting than this is refused (evaluation recurses once per level).
constexpr int kMaxDepth = 64;

enum class Token : std::uint8_t {
  kEnd,
  kNumber,
  kString,
  kName,
  kLParen,
  kRParen,
  kComma,
  kNot,
  kAnd,
  kOr,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kMinus,
};

bool IsNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
}

}  // namespace

// Recursive descent over the text, one token of lookahead.
class ExprParser {
 public:
  explicit ExprParser(std::string_view text) : text_(text) {}

  Result<Expr> Parse() {
    Expr expr;
    expr.text_ = std::string(text_);
    expr_ = &expr;
    SLUICE_RETURN_IF_ERROR(Next());
    SLUICE_ASSIGN_OR_RETURN(std::uint32_t root, ParseOr(0));
    if (token_ != Token::kEnd) return Error(token_start_, "unexpected text after the expression");
    expr.root_ = root;
    return expr;
  }

 private:
  Status Error(std::size_t at, std::string_view what) const {
    return InvalidArgument(fmt::format("column {}: {}", at + 1, what));
  }

  // Reads the next token into token_ (and token_text_ / token_number_).
  Status Next() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    token_start_ = pos_;
    if (pos_ >= text_.size()) {
      token_ = Token::kEnd;
      return Status::Ok();
    }
    const char c = text_[pos_];
    auto two = [&](char second) { return pos_ + 1 < text_.size() && text_[pos_ + 1] == second; };
    auto take = [&](Token t, std::size_t n) {
      token_ = t;
      pos_ += n;
      return Status::Ok();
    };
    switch (c) {
      case '(': return take(Token::kLParen, 1);
      case ')': return take(Token::kRParen, 1);
      case ',': return take(Token::kComma, 1);
      case '-': return take(Token::kMinus, 1);
      case '!': return two('=') ? take(Token::kNe, 2) : take(Token::kNot, 1);
      case '<': return two('=') ? take(Token::kLe, 2) : take(Token::kLt, 1);
      case '>': return two('=') ? take(Token::kGe, 2) : take(Token::kGt, 1);
      case '=':
        if (two('=')) return take(Token::kEq, 2);
        return Error(pos_, "'=' is not an operator (compare with '==')");
      case '&':
        if (two('&')) return take(Token::kAnd, 2);
        return Error(pos_, "'&' is not an operator (and is '&&')");
      case '|':
        if (two('|')) return take(Token::kOr, 2);
        return Error(pos_, "'|' is not an operator (or is '||')");
      case '\'':
      case '"': return ReadString(c);
      default: break;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      std::size_t end = pos_;
      while (end < text_.size() &&
             (std::isalnum(static_cast<unsigned char>(text_[end])) || text_[end] == '.' ||
              ((text_[end] == '+' || text_[end] == '-') && end > pos_ &&
               (text_[end - 1] == 'e' || text_[end - 1] == 'E')))) {
        ++end;
      }
      double number = 0;
      const auto [ptr, error] = std::from_chars(text_.data() + pos_, text_.data() + end, number);
      if (error != std::errc() || ptr != text_.data() + end || !std::isfinite(number)) {
        return Error(pos_, fmt::format("'{}' is not a number", text_.substr(pos_, end - pos_)));
      }
      token_ = Token::kNumber;
      token_number_ = number;
      pos_ = end;
      return Status::Ok();
    }
    if (IsNameStart(c)) {
      std::size_t end = pos_;
      while (end < text_.size() && IsNameChar(text_[end])) ++end;
      token_ = Token::kName;
      token_text_ = std::string(text_.substr(pos_, end - pos_));
      pos_ = end;
      return Status::Ok();
    }
    return Error(pos_, fmt::format("unexpected character '{}'", c));
  }

  Status ReadString(char quote) {
    std::string text;
    std::size_t i = pos_ + 1;
    for (; i < text_.size() && text_[i] != quote; ++i) {
      if (text_[i] != '\\') {
        text.push_back(text_[i]);
        continue;
      }
      if (++i >= text_.size()) break;
      switch (text_[i]) {
        case '\\': text.push_back('\\'); break;
        case '\'': text.push_back('\''); break;
        case '"': text.push_back('"'); break;
        case 'n': text.push_back('\n'); break;
        case 't': text.push_back('\t'); break;
        default:
          return Error(i - 1, fmt::format("unknown escape '\\{}' (known: \\\\ \\' \\\" \\n \\t)",
                                          text_[i]));
      }
    }
    if (i >= text_.size()) return Error(pos_, "string not closed");
    token_ = Token::kString;
    token_text_ = std::move(text);
    pos_ = i + 1;
    return Status::Ok();
  }

  std::uint32_t Add(Expr::Node node) {
    expr_->nodes_.push_back(node);
    return static_cast<std::uint32_t>(expr_->nodes_.size() - 1);
  }
  std::string_view Keep(std::string text) {
    expr_->strings_.push_back(std::make_unique<std::string>(std::move(text)));
    return *expr_->strings_.back();
  }
  Expr::Node Binary(Op op, std::uint32_t a, std::uint32_t b) {
    Expr::Node node{.op = op};
    node.a = a;
    node.b = b;
    return node;
  }

  Result<std::uint32_t> ParseOr(int depth) {
    SLUICE_ASSIGN_OR_RETURN(std::uint32_t left, ParseAnd(depth));
    while (token_ == Token::kOr) {
      SLUICE_RETURN_IF_ERROR(Next());
      SLUICE_ASSIGN_OR_RETURN(std::uint32_t right, ParseAnd(depth));
      left = Add(Binary(Op::kOr, left, right));
    }
    return left;
  }

  Result<std::uint32_t> ParseAnd(int depth) {
    SLUICE_ASSIGN_OR_RETURN(std::uint32_t left, ParseUnary(depth));
    while (token_ == Token::kAnd) {
      SLUICE_RETURN_IF_ERROR(Next());
      SLUICE_ASSIGN_OR_RETURN(std::uint32_t right, ParseUnary(depth));
      left = Add(Binary(Op::kAnd, left, right));
    }
    return left;
  }

  Result<std::uint32_t> ParseUnary(int depth) {
    if (depth > kMaxDepth) return Error(token_start_, "nested too deeply");
    if (token_ == Token::kNot) {
      SLUICE_RETURN_IF_ERROR(Next());
      SLUICE_ASSIGN_OR_RETURN(std::uint32_t operand, ParseUnary(depth + 1));
      return Add(Binary(Op::kNot, operand, 0));
    }
    return ParseCompare(depth);
  }

  Result<std::uint32_t> ParseCompare(int depth) {
    SLUICE_ASSIGN_OR_RETURN(std::uint32_t left, ParsePrimary(depth));
    Op op;
    switch (token_) {
      case Token::kEq: op = Op::kEq; break;
      case Token::kNe: op = Op::kNe; break;
      case Token::kLt: op = Op::kLt; break;
      case Token::kLe: op = Op::kLe; break;
      case Token::kGt: op = Op::kGt; break;
      case Token::kGe: op = Op::kGe; break;
      default: return left;
    }
    SLUICE_RETURN_IF_ERROR(Next());
    SLUICE_ASSIGN_OR_RETURN(std::uint32_t right, ParsePrimary(depth));
    switch (token_) {
      case Token::kEq: case Token::kNe: case Token::kLt:
      case Token::kLe: case Token::kGt: case Token::kGe:
        return Error(token_start_, "comparisons do not chain (use && between two)");
      default: return Add(Binary(op, left, right));
    }
  }

  Result<std::uint32_t> ParsePrimary(int depth) {
    if (depth > kMaxDepth) return Error(token_start_, "nested too deeply");
    const std::size_t at = token_start_;
    switch (token_) {
      case Token::kNumber: {
        Expr::Node node{.op = Op::kLiteral};
        node.literal = {.kind = Kind::kNumber, .number = token_number_};
        SLUICE_RETURN_IF_ERROR(Next());
        return Add(node);
      }
      case Token::kMinus: {
        SLUICE_RETURN_IF_ERROR(Next());
        if (token_ != Token::kNumber) return Error(at, "'-' must be followed by a number");
        Expr::Node node{.op = Op::kLiteral};
        node.literal = {.kind = Kind::kNumber, .number = -token_number_};
        SLUICE_RETURN_IF_ERROR(Next());
        return Add(node);
      }
      case Token::kString: {
        Expr::Node node{.op = Op::kLiteral};
        node.literal = {.kind = Kind::kString, .text = Keep(std::move(token_text_))};
        SLUICE_RETURN_IF_ERROR(Next());
        return Add(node);
      }
      case Token::kLParen: {
        SLUICE_RETURN_IF_ERROR(Next());
        SLUICE_ASSIGN_OR_RETURN(std::uint32_t inner, ParseOr(depth + 1));
        if (token_ != Token::kRParen) return Error(token_start_, "expected ')'");
        SLUICE_RETURN_IF_ERROR(Next());
        return inner;
      }
      case Token::kName: return ParseName(depth, at);
      case Token::kEnd: return Error(at, "expected a value, found the end");
      default: return Error(at, "expected a value");
    }
  }

  Result<std::uint32_t> ParseName(int depth, std::size_t at) {
    std::string name = std::move(token_text_);
    SLUICE_RETURN_IF_ERROR(Next());
    if (token_ != Token::kLParen) {
      if (name == "true" || name == "false") {
        Expr::Node node{.op = Op::kLiteral};
        node.literal = {.kind = Kind::kBool, .boolean = name == "true"};
        return Add(node);
      }
      return Field(std::move(name));
    }
    // A call.
    struct Function {
      const char* name;
      Op op;
      int arity;
    };
    static constexpr Function kFunctions[] = {
        {"has", Op::kHas, 1},           {"starts_with", Op::kStartsWith, 2},
        {"ends_with", Op::kEndsWith, 2}, {"contains", Op::kContains, 2},
        {"matches", Op::kMatches, 2},   {"len", Op::kLen, 1}};
    const Function* function = nullptr;
    for (const Function& f : kFunctions) {
      if (name == f.name) function = &f;
    }
    if (function == nullptr) {
      return Error(at, fmt::format("unknown function '{}' (known: has, starts_with, "
                                   "ends_with, contains, matches, len)",
                                   name));
    }
    SLUICE_RETURN_IF_ERROR(Next());  // past '('
    Expr::Node node{.op = function->op};
    if (function->op == Op::kHas) {
      if (token_ != Token::kName) return Error(token_start_, "has() takes a field name");
      node.literal.text = Keep(token_text_);
      Remember(token_text_);
      SLUICE_RETURN_IF_ERROR(Next());
    } else {
      std::vector<std::size_t> starts;
      std::vector<std::uint32_t> args;
      while (true) {
        starts.push_back(token_start_);
        SLUICE_ASSIGN_OR_RETURN(std::uint32_t arg, ParseOr(depth + 1));
        args.push_back(arg);
        if (token_ != Token::kComma) break;
        SLUICE_RETURN_IF_ERROR(Next());
      }
      if (static_cast<int>(args.size()) != function->arity) {
        return Error(at, fmt::format("{}() takes {} argument{}, not {}", name,
                                     function->arity, function->arity == 1 ? "" : "s",
                                     args.size()));
      }
      node.a = args[0];
      if (args.size() > 1) node.b = args[1];
      if (function->op == Op::kMatches) {
        const Expr::Node& pattern = expr_->nodes_[args[1]];
        if (pattern.op != Op::kLiteral || pattern.literal.kind != Kind::kString) {
          return Error(starts[1], "matches() takes its regex as a string literal");
        }
        RE2::Options options;
        options.set_log_errors(false);
        auto regex = std::make_unique<RE2>(
            re2::StringPiece(pattern.literal.text.data(), pattern.literal.text.size()),
            options);
        if (!regex->ok()) {
          return Error(starts[1], fmt::format("not a regex: {}", regex->error()));
        }
        node.regex = static_cast<std::uint32_t>(expr_->regexes_.size());
        expr_->regexes_.push_back(std::move(regex));
      }
    }
    if (token_ != Token::kRParen) {
      return Error(token_start_, fmt::format("expected ')' to close {}(", name));
    }
    SLUICE_RETURN_IF_ERROR(Next());
    return Add(node);
  }

  Result<std::uint32_t> Field(std::string name) {
    Expr::Node node{.op = Op::kField};
    node.literal.text = Keep(name);
    Remember(name);
    return Add(node);
  }

  void Remember(const std::string& name) {
    if (Expr::IsBuiltinName(name)) return;
    std::vector<std::string>& fields = expr_->fields_;
    if (std::find(fields.begin(), fields.end(), name) == fields.end()) fields.push_back(name);
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  std::size_t token_start_ = 0;
  Token token_ = Token::kEnd;
  std::string token_text_;
  double token_number_ = 0;
  Expr* expr_ = nullptr;
};

Result<Expr> Expr::Parse(std::string_view text) {
  if (text.size() > kMaxLength) {
    return InvalidArgument(fmt::format("an expression of {} bytes: at most {}", text.size(),
                                       kMaxLength));
  }
  return ExprParser(text).Parse();
}

Expr::Expr(Expr&&) noexcept = default;
Expr& Expr::operator=(Expr&&) noexcept = default;
Expr::~Expr() = default;

namespace {

bool Truthy(const Expr::Value& v) {
  switch (v.kind) {
    case Kind::kBool: return v.boolean;
    case Kind::kNumber: return v.number != 0;
    case Kind::kString: return !v.text.empty();
    case Kind::kMissing: return false;
  }
  return false;
}

Expr::Value Bool(bool b) { return {.kind = Kind::kBool, .boolean = b}; }

// A record's field as an expression value: text, numbers and booleans; anything else
// (bytes, images, JSON) is missing.
Expr::Value FromField(const Value& field) {
  if (const auto* text = std::get_if<std::string>(&field)) {
    return {.kind = Kind::kString, .text = *text};
  }
  if (const auto* i = std::get_if<std::int64_t>(&field)) {
    return {.kind = Kind::kNumber, .number = static_cast<double>(*i)};
  }
  if (const auto* d = std::get_if<double>(&field)) return {.kind = Kind::kNumber, .number = *d};
  if (const auto* b = std::get_if<bool>(&field)) return Bool(*b);
  return {};
}

bool Compare(Op op, const Expr::Value& a, const Expr::Value& b) {
  if (a.kind != b.kind || a.kind == Kind::kMissing) return false;
  int order = 0;
  if (a.kind == Kind::kNumber) {
    order = a.number < b.number ? -1 : (a.number > b.number ? 1 : 0);
  } else if (a.kind == Kind::kString) {
    order = a.text.compare(b.text);
  } else {  // booleans: only == and !=
    if (op == Op::kEq) return a.boolean == b.boolean;
    if (op == Op::kNe) return a.boolean != b.boolean;
    return false;
  }
  switch (op) {
    case Op::kEq: return order == 0;
    case Op::kNe: return order != 0;
    case Op::kLt: return order < 0;
    case Op::kLe: return order <= 0;
    case Op::kGt: return order > 0;
    case Op::kGe: return order >= 0;
    default: return false;
  }
}

}  // namespace

std::string_view UrlHost(std::string_view url) {
  const std::size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  url.remove_prefix(scheme + 3);
  url = url.substr(0, url.find_first_of("/?#"));
  if (const std::size_t at = url.rfind('@'); at != std::string_view::npos) {
    url.remove_prefix(at + 1);
  }
  if (url.starts_with('[')) {  // an IPv6 literal: up to its bracket
    const std::size_t close = url.find(']');
    return close == std::string_view::npos ? url : url.substr(0, close + 1);
  }
  return url.substr(0, url.find(':'));
}

Expr::Value Expr::Eval(std::uint32_t index, const Record& record) const {
  const Node& node = nodes_[index];
  switch (node.op) {
    case Op::kLiteral: return node.literal;
    case Op::kField: {
      if (const sluice::Value* field = record.Find(node.literal.text)) return FromField(*field);
      if (const std::string* column = record.FindColumn(node.literal.text)) {
        return {.kind = Kind::kString, .text = *column};
      }
      if (node.literal.text == "url") return {.kind = Kind::kString, .text = record.url()};
      if (node.literal.text == "host") {
        return {.kind = Kind::kString, .text = UrlHost(record.url())};
      }
      if (node.literal.text == "status") {
        const std::string_view status = !record.failed() ? "ok"
                                        : record.reason() == FailureReason::kFiltered
                                            ? "filtered"
                                            : "failed";
        return {.kind = Kind::kString, .text = status};
      }
      if (node.literal.text == "reason" && record.failed()) {
        return {.kind = Kind::kString, .text = FailureReasonName(record.reason())};
      }
      return {};
    }
    case Op::kNot: return Bool(!Truthy(Eval(node.a, record)));
    case Op::kAnd: return Bool(Truthy(Eval(node.a, record)) && Truthy(Eval(node.b, record)));
    case Op::kOr: return Bool(Truthy(Eval(node.a, record)) || Truthy(Eval(node.b, record)));
    case Op::kEq:
    case Op::kNe:
    case Op::kLt:
    case Op::kLe:
    case Op::kGt:
    case Op::kGe: return Bool(Compare(node.op, Eval(node.a, record), Eval(node.b, record)));
    case Op::kHas:
      return Bool(record.Find(node.literal.text) != nullptr ||
                  record.FindColumn(node.literal.text) != nullptr);
    case Op::kStartsWith:
    case Op::kEndsWith:
    case Op::kContains: {
      const Value a = Eval(node.a, record);
      const Value b = Eval(node.b, record);
      if (a.kind != Kind::kString || b.kind != Kind::kString) return Bool(false);
      if (node.op == Op::kStartsWith) return Bool(a.text.starts_with(b.text));
      if (node.op == Op::kEndsWith) return Bool(a.text.ends_with(b.text));
      return Bool(a.text.find(b.text) != std::string_view::npos);
    }
    case Op::kMatches: {
      const Value a = Eval(node.a, record);
      if (a.kind != Kind::kString) return Bool(false);
      return Bool(RE2::PartialMatch(re2::StringPiece(a.text.data(), a.text.size()),
                                    *regexes_[node.regex]));
    }
    case Op::kLen: {
      const Value a = Eval(node.a, record);
      if (a.kind != Kind::kString) return {};
      return {.kind = Kind::kNumber, .number = static_cast<double>(a.text.size())};
    }
  }
  return {};
}

bool Expr::Test(const Record& record) const { return Truthy(Eval(root_, record)); }

Expr::Value Expr::Evaluate(const Record& record) const { return Eval(root_, record); }

bool Expr::IsBuiltinName(std::string_view name) {
  return name == "url" || name == "host" || name == "status" || name == "reason";
}

std::uint64_t Expr::KeyHash(const Record& record) const {
  // FNV-1a over a kind tag and the value's bytes: the same on every machine and in
  // every run, so that a shard holds the same keys wherever it runs.
  std::uint64_t hash = 1469598103934665603ull;
  auto mix = [&hash](const void* data, std::size_t size) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < size; ++i) {
      hash ^= bytes[i];
      hash *= 1099511628211ull;
    }
  };
  const Value value = Eval(root_, record);
  const auto kind = static_cast<unsigned char>(value.kind);
  mix(&kind, 1);
  switch (value.kind) {
    case Value::Kind::kMissing:
      break;
    case Value::Kind::kBool: {
      const unsigned char b = value.boolean ? 1 : 0;
      mix(&b, 1);
      break;
    }
    case Value::Kind::kNumber: {
      // Numbers are doubles (3 and 3.0 are one key; -0 is 0), hashed byte by byte
      // from the lowest, whatever the machine's byte order.
      const double number = value.number == 0 ? 0.0 : value.number;
      std::uint64_t bits = std::bit_cast<std::uint64_t>(number);
      unsigned char bytes[8];
      for (unsigned char& byte : bytes) {
        byte = static_cast<unsigned char>(bits & 0xff);
        bits >>= 8;
      }
      mix(bytes, sizeof bytes);
      break;
    }
    case Value::Kind::kString:
      mix(value.text.data(), value.text.size());
      break;
  }
  return hash;
}

}  // namespace sluice
