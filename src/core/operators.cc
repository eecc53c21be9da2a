#include "src/core/operators.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <utility>

#include "src/core/expr.h"

namespace sluice {
namespace {

// A branch name is used as NAME.BRANCH: no dots, not empty.
bool IsBranchName(std::string_view name) {
  return !name.empty() && name.find('.') == std::string_view::npos &&
         name.find_first_of(" \t\n") == std::string_view::npos;
}

void CheckBranchNames(const std::vector<std::string>& branches, YamlOptions& options) {
  std::set<std::string> seen;
  for (const std::string& branch : branches) {
    if (!IsBranchName(branch)) {
      options.AddError("branches",
                       fmt::format("'{}' is not a branch name (no dots or spaces)", branch));
    } else if (!seen.insert(branch).second) {
      options.AddError("branches", fmt::format("'{}' is named twice", branch));
    }
  }
}

Result<BuiltOperator> Copy(YamlOptions& options) {
  BuiltOperator built;
  built.branches = options.GetStringList("branches", {});
  if (built.branches.size() < 2) {
    options.AddError("branches", "required: the names of two branches or more");
  }
  CheckBranchNames(built.branches, options);
  auto op = std::make_shared<Operator>();
  op->kind = Operator::Kind::kCopy;
  op->ports = built.branches.size();
  built.op = std::move(op);
  return built;
}

Result<BuiltOperator> Split(const std::string& name, YamlOptions& options,
                            std::vector<std::string>* errors) {
  BuiltOperator built;
  const std::optional<YAML::Node> list = options.GetSequence("branches");
  // The conditions in order; the last may be absent (always taken).
  auto conditions = std::make_shared<std::vector<std::shared_ptr<const Expr>>>();
  if (!list.has_value() || list->size() < 2) {
    options.AddError("branches",
                     "required: two branches or more, each {name: NAME, when: CONDITION}");
  } else {
    for (std::size_t i = 0; i < list->size(); ++i) {
      const std::string path = fmt::format("{}[{}]", options.KeyPath("branches"), i);
      const YAML::Node entry = (*list)[i];
      if (!entry.IsMap()) {
        errors->push_back(fmt::format("{}: expected {{name: NAME, when: CONDITION}}", path));
        continue;
      }
      YamlOptions branch(entry, path, errors);
      built.branches.push_back(branch.GetString("name", ""));
      const std::string when = branch.GetString("when", "");
      const bool last = i + 1 == list->size();
      if (when.empty() && !last) {
        branch.AddError("when",
                        "required: a condition (only the last branch may take all the rest)");
      }
      if (!when.empty()) {
        Result<Expr> expr = Expr::Parse(when);
        if (!expr.ok()) {
          branch.AddError("when", expr.status().message());
        } else {
          for (const std::string& field : expr->fields()) {
            built.reads_or_columns.push_back(field);
          }
          conditions->push_back(std::make_shared<const Expr>(std::move(expr).value()));
        }
      } else if (last) {
        conditions->push_back(nullptr);
      }
      branch.Finish().IgnoreError();
    }
  }
  CheckBranchNames(built.branches, options);
  auto op = std::make_shared<Operator>();
  op->kind = Operator::Kind::kRoute;
  op->ports = built.branches.size();
  const std::string message = fmt::format("split {}: no branch's condition held", name);
  op->route = [conditions, message](Record& record) -> std::size_t {
    for (std::size_t i = 0; i < conditions->size(); ++i) {
      const std::shared_ptr<const Expr>& condition = (*conditions)[i];
      if (condition == nullptr || condition->Test(record)) return i;
    }
    record.Fail(FailureReason::kFiltered, message);
    return 0;
  };
  built.op = std::move(op);
  return built;
}

Result<BuiltOperator> Shard(YamlOptions& options) {
  BuiltOperator built;
  const std::string key = options.GetString("key", "host");
  const auto shards = static_cast<std::size_t>(options.GetInt("shards", 0, 0, 4096));
  if (shards < 2) options.AddError("shards", "required: the number of branches, 2 or more");
  Result<Expr> expr = Expr::Parse(key);
  if (!expr.ok()) options.AddError("key", expr.status().message());
  for (std::size_t i = 0; i < shards; ++i) built.branches.push_back(std::to_string(i));
  auto op = std::make_shared<Operator>();
  op->kind = Operator::Kind::kRoute;
  op->ports = std::max<std::size_t>(shards, 1);
  if (expr.ok()) {
    built.reads_or_columns = expr->fields();
    auto parsed = std::make_shared<const Expr>(std::move(expr).value());
    op->route = [parsed, shards = op->ports](Record& record) -> std::size_t {
      return static_cast<std::size_t>(parsed->KeyHash(record) % shards);
    };
  }
  built.op = std::move(op);
  return built;
}

Result<BuiltOperator> Join(const std::vector<std::string>& inputs, YamlOptions& options,
                           std::vector<std::string>* errors) {
  BuiltOperator built;
  auto op = std::make_shared<Operator>();
  op->kind = Operator::Kind::kJoin;
  op->join_fields.resize(inputs.size());
  const std::optional<YAML::Node> fields = options.GetMapping("fields");
  if (!fields.has_value()) {
    options.AddError("fields",
                     "required: for each input after the first, the fields it adds "
                     "({INPUT: [FIELD, ...]})");
  } else {
    YamlOptions by_input(*fields, options.KeyPath("fields"), errors);
    for (std::size_t k = 1; k < inputs.size(); ++k) {
      op->join_fields[k] = by_input.GetStringList(inputs[k], {});
      if (op->join_fields[k].empty()) {
        by_input.AddError(inputs[k], "required: the fields this input adds to the item");
      }
    }
    if (!inputs.empty() && fields->IsMap() && (*fields)[inputs[0]].IsDefined()) {
      by_input.AddError(inputs[0],
                        "the first input gives the whole record: list only the others");
      by_input.GetStringList(inputs[0], {});
    }
    by_input.Finish().IgnoreError();
  }
  built.op = std::move(op);
  return built;
}

}  // namespace

bool IsOperatorType(std::string_view type) {
  return type == "copy" || type == "split" || type == "shard" || type == "merge" ||
         type == "join";
}

GraphShape::Kind OperatorShape(std::string_view type) {
  if (type == "copy") return GraphShape::Kind::kCopy;
  if (type == "split" || type == "shard") return GraphShape::Kind::kRoute;
  if (type == "merge") return GraphShape::Kind::kMerge;
  if (type == "join") return GraphShape::Kind::kJoin;
  return GraphShape::Kind::kStage;
}

Result<BuiltOperator> BuildOperator(std::string_view type, const std::string& name,
                                    const std::vector<std::string>& inputs,
                                    YamlOptions& options,
                                    std::vector<std::string>* errors) {
  const std::size_t errors_before = errors->size();
  Result<BuiltOperator> built = InvalidArgument(
      fmt::format("{}: '{}' is not an operator type", options.path(), type));
  if (type == "copy") {
    built = Copy(options);
  } else if (type == "split") {
    built = Split(name, options, errors);
  } else if (type == "shard") {
    built = Shard(options);
  } else if (type == "merge") {
    BuiltOperator merge;
    auto op = std::make_shared<Operator>();
    op->kind = Operator::Kind::kMerge;
    merge.op = std::move(op);
    built = std::move(merge);
  } else if (type == "join") {
    built = Join(inputs, options, errors);
  }
  if (errors->size() > errors_before) return InvalidArgument((*errors)[errors_before]);
  return built;
}

}  // namespace sluice
