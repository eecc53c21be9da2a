#include "src/core/reduce.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

namespace sluice {
namespace {

struct KindName {
  AggregateKind kind;
  const char* name;
};
constexpr KindName kKinds[] = {
    {AggregateKind::kCount, "count"}, {AggregateKind::kSum, "sum"},
    {AggregateKind::kMin, "min"},     {AggregateKind::kMax, "max"},
    {AggregateKind::kMean, "mean"},   {AggregateKind::kHistogram, "histogram"},
};

// A number as JSON: an integer when it is one (counts and sums of counts read as
// such), else the double.
OrderedJson NumberJson(double value) {
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 9.0e15) {
    return static_cast<std::int64_t>(value);
  }
  return value;
}

// A value the numeric aggregates take: numbers, and booleans as 1 and 0.
std::optional<double> NumberOf(const Expr::Value& value) {
  using Kind = Expr::Value::Kind;
  if (value.kind == Kind::kBool) return value.boolean ? 1.0 : 0.0;
  if (value.kind == Kind::kNumber && std::isfinite(value.number)) return value.number;
  return std::nullopt;
}

Result<std::shared_ptr<const Expr>> ParseExprOption(YamlOptions& options,
                                                    std::string_view key,
                                                    const std::string& text,
                                                    std::vector<std::string>& reads) {
  Result<Expr> expr = Expr::Parse(text);
  if (!expr.ok()) {
    options.AddError(key, expr.status().message());
    return expr.status();
  }
  for (const std::string& field : expr->fields()) {
    if (std::find(reads.begin(), reads.end(), field) == reads.end()) {
      reads.push_back(field);
    }
  }
  return std::make_shared<const Expr>(std::move(expr).value());
}

void ParseAggregate(const std::string& name, const YAML::Node& node,
                    const std::string& path, ReduceSpec& spec,
                    std::vector<std::string>* errors) {
  YamlOptions options(node.IsMap() ? node : YAML::Node(), path, errors);
  if (!node.IsMap()) {
    errors->push_back(fmt::format(
        "{}: expected a mapping such as {{count: \"status == 'ok'\"}} or {{sum: faces}}",
        path));
    return;
  }
  AggregateSpec aggregate;
  aggregate.name = name;
  int kinds = 0;
  std::string text;
  for (const KindName& kind : kKinds) {
    std::string value = options.GetString(kind.name, "");
    if (value.empty()) continue;
    ++kinds;
    aggregate.kind = kind.kind;
    text = std::move(value);
  }
  if (kinds != 1) {
    errors->push_back(fmt::format(
        "{}: {} (give exactly one of count, sum, min, max, mean, histogram, with "
        "its expression)",
        path, kinds == 0 ? "required: what to aggregate" : "more than one aggregate"));
    options.Finish().IgnoreError();
    return;
  }
  const std::string kind_key(kKinds[static_cast<int>(aggregate.kind)].name);
  Result<std::shared_ptr<const Expr>> value =
      ParseExprOption(options, kind_key, text, spec.reads);
  if (value.ok()) aggregate.value = *value;
  if (std::string where = options.GetString("where", ""); !where.empty()) {
    Result<std::shared_ptr<const Expr>> parsed =
        ParseExprOption(options, "where", where, spec.reads);
    if (parsed.ok()) aggregate.where = *parsed;
  }
  std::optional<YAML::Node> buckets = options.GetSequence("buckets");
  if (aggregate.kind == AggregateKind::kHistogram) {
    if (!buckets.has_value() || buckets->size() == 0) {
      options.AddError("buckets", "required: the buckets' upper bounds, e.g. [0, 1, 5]");
    } else {
      for (std::size_t i = 0; i < buckets->size(); ++i) {
        double bound = 0;
        const YAML::Node item = (*buckets)[i];
        const bool number = item.IsScalar() && YAML::convert<double>::decode(item, bound) &&
                            std::isfinite(bound);
        if (!number) {
          errors->push_back(
              fmt::format("{}.buckets[{}]: expected a number, got '{}'", path, i,
                          item.IsScalar() ? item.Scalar() : std::string("a collection")));
        } else if (!aggregate.buckets.empty() && bound <= aggregate.buckets.back()) {
          errors->push_back(fmt::format(
              "{}.buckets[{}]: {} is not above the bound before it (bounds ascend)", path,
              i, item.Scalar()));
        } else {
          aggregate.buckets.push_back(bound);
        }
      }
      if (aggregate.buckets.size() > 64) {
        options.AddError("buckets", "at most 64 bounds");
      }
    }
  } else if (buckets.has_value()) {
    options.AddError("buckets", "only a histogram has buckets");
  }
  options.Finish().IgnoreError();
  spec.aggregates.push_back(std::move(aggregate));
}

}  // namespace

Result<std::shared_ptr<const ReduceSpec>> ParseReduce(const std::string& name,
                                                      YamlOptions& options,
                                                      std::vector<std::string>* errors) {
  const std::size_t errors_before = errors->size();
  auto spec = std::make_shared<ReduceSpec>();
  spec->name = name;
  spec->path = options.path();
  if (std::string group_by = options.GetString("group_by", ""); !group_by.empty()) {
    Result<std::shared_ptr<const Expr>> parsed =
        ParseExprOption(options, "group_by", group_by, spec->reads);
    if (parsed.ok()) spec->group_by = *parsed;
  }
  std::optional<YAML::Node> aggregates = options.GetMapping("aggregates");
  if (!aggregates.has_value() || aggregates->size() == 0) {
    options.AddError("aggregates",
                     "required: a mapping of names to aggregates, e.g. "
                     "{ok: {count: \"status == 'ok'\"}}");
  } else {
    for (const auto& entry : *aggregates) {
      const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "";
      const std::string path = options.KeyPath("aggregates") + "." + key;
      if (key.empty()) {
        errors->push_back(fmt::format("{}: an aggregate's name must be a non-empty text",
                                      options.KeyPath("aggregates")));
      } else if (key == "key" || key == "items") {
        errors->push_back(fmt::format(
            "{}: '{}' is a name every group has already; pick another", path, key));
      } else {
        ParseAggregate(key, entry.second, path, *spec, errors);
      }
    }
  }
  spec->max_groups =
      static_cast<std::size_t>(options.GetInt("max_groups", 10000, 1, 10'000'000));
  spec->order_by = options.GetString("order_by", "");
  if (!spec->order_by.empty() && spec->order_by != "key" && spec->order_by != "items") {
    auto it = std::find_if(spec->aggregates.begin(), spec->aggregates.end(),
                           [&](const AggregateSpec& a) { return a.name == spec->order_by; });
    if (it == spec->aggregates.end()) {
      options.AddError("order_by",
                       fmt::format("'{}' is none of key, items and the aggregates' names",
                                   spec->order_by));
    } else if (it->kind == AggregateKind::kHistogram) {
      options.AddError("order_by", fmt::format("'{}' is a histogram, which has no order",
                                               spec->order_by));
    }
  }
  if (spec->order_by == "key") spec->order_by.clear();
  spec->limit = static_cast<std::size_t>(options.GetInt("limit", 0, 0, 10'000'000));
  spec->emit_every = std::chrono::milliseconds(static_cast<std::int64_t>(
      options.GetDouble("emit_seconds", 0, 0, 7 * 86400) * 1000));
  if (errors->size() > errors_before) return InvalidArgument((*errors)[errors_before]);
  return std::shared_ptr<const ReduceSpec>(std::move(spec));
}

ReduceTable::ReduceTable(std::shared_ptr<const ReduceSpec> spec)
    : spec_(std::move(spec)), other_(NewGroup()) {}

ReduceGroup ReduceTable::NewGroup() const {
  ReduceGroup group;
  group.aggregates.resize(spec_->aggregates.size());
  for (std::size_t i = 0; i < spec_->aggregates.size(); ++i) {
    if (spec_->aggregates[i].kind == AggregateKind::kHistogram) {
      group.aggregates[i].buckets.assign(spec_->aggregates[i].buckets.size() + 1, 0);
    }
  }
  return group;
}

std::string ReduceTable::KeyOf(const Record& record) const {
  if (spec_->group_by == nullptr) return "null";
  const Expr::Value value = spec_->group_by->Evaluate(record);
  switch (value.kind) {
    case Expr::Value::Kind::kMissing: return "null";
    case Expr::Value::Kind::kBool: return value.boolean ? "true" : "false";
    case Expr::Value::Kind::kNumber:
      return std::isfinite(value.number) ? DumpJson(NumberJson(value.number)) : "null";
    case Expr::Value::Kind::kString: return DumpJson(OrderedJson(std::string(value.text)));
  }
  return "null";
}

ReduceGroup ReduceTable::GroupOf(const Record& record) const {
  ReduceGroup group = NewGroup();
  group.items = 1;
  for (std::size_t i = 0; i < spec_->aggregates.size(); ++i) {
    const AggregateSpec& spec = spec_->aggregates[i];
    if (spec.value == nullptr) continue;
    if (spec.where != nullptr && !spec.where->Test(record)) continue;
    Aggregate& aggregate = group.aggregates[i];
    if (spec.kind == AggregateKind::kCount) {
      if (spec.value->Test(record)) aggregate.count = 1;
      continue;
    }
    const std::optional<double> number = NumberOf(spec.value->Evaluate(record));
    if (!number.has_value()) continue;
    aggregate.count = 1;
    aggregate.sum = aggregate.min = aggregate.max = *number;
    if (spec.kind == AggregateKind::kHistogram) {
      const auto bound = std::lower_bound(spec.buckets.begin(), spec.buckets.end(), *number);
      aggregate.buckets[static_cast<std::size_t>(bound - spec.buckets.begin())] = 1;
    }
  }
  return group;
}

void ReduceTable::MergeInto(ReduceGroup& into, const ReduceGroup& from) const {
  into.items += from.items;
  for (std::size_t i = 0; i < into.aggregates.size(); ++i) {
    Aggregate& a = into.aggregates[i];
    const Aggregate& b = from.aggregates[i];
    if (b.count == 0) continue;
    a.min = a.count == 0 ? b.min : std::min(a.min, b.min);
    a.max = a.count == 0 ? b.max : std::max(a.max, b.max);
    a.count += b.count;
    a.sum += b.sum;
    for (std::size_t k = 0; k < a.buckets.size() && k < b.buckets.size(); ++k) {
      a.buckets[k] += b.buckets[k];
    }
  }
}

void ReduceTable::AddGroup(const std::string& key, const ReduceGroup& group) {
  auto it = groups_.find(key);
  if (it == groups_.end()) {
    if (groups_.size() >= spec_->max_groups) {
      MergeInto(other_, group);
      return;
    }
    it = groups_.emplace(key, NewGroup()).first;
  }
  MergeInto(it->second, group);
}

void ReduceTable::Add(const Record& record) { AddGroup(KeyOf(record), GroupOf(record)); }

void ReduceTable::Merge(const ReduceTable& other) {
  for (const auto& [key, group] : other.groups_) AddGroup(key, group);
  MergeInto(other_, other.other_);
}

std::uint64_t ReduceTable::items() const {
  std::uint64_t items = other_.items;
  for (const auto& [key, group] : groups_) items += group.items;
  return items;
}

namespace {

OrderedJson AggregateStateJson(const AggregateSpec& spec, const Aggregate& aggregate) {
  switch (spec.kind) {
    case AggregateKind::kCount: return aggregate.count;
    case AggregateKind::kSum:
    case AggregateKind::kMean: return OrderedJson::array({aggregate.count, aggregate.sum});
    case AggregateKind::kMin: return OrderedJson::array({aggregate.count, aggregate.min});
    case AggregateKind::kMax: return OrderedJson::array({aggregate.count, aggregate.max});
    case AggregateKind::kHistogram: return aggregate.buckets;
  }
  return nullptr;
}

OrderedJson StateOfGroup(const ReduceSpec& spec, const ReduceGroup& group) {
  OrderedJson aggregates = OrderedJson::array();
  for (std::size_t i = 0; i < spec.aggregates.size(); ++i) {
    aggregates.push_back(AggregateStateJson(spec.aggregates[i], group.aggregates[i]));
  }
  return OrderedJson::array({group.items, std::move(aggregates)});
}

// Reads back what GroupStateJson() wrote into `group` (sized by NewGroup()); throws
// nlohmann's exceptions, or a std::string naming what is wrong.
void ReadGroupState(const ReduceSpec& spec, const nlohmann::json& state,
                    ReduceGroup& group) {
  if (!state.is_array() || state.size() != 2 || !state[1].is_array() ||
      state[1].size() != spec.aggregates.size()) {
    throw std::string("a group is not [items, [one state per aggregate]]");
  }
  group.items = state[0].get<std::uint64_t>();
  for (std::size_t i = 0; i < spec.aggregates.size(); ++i) {
    const nlohmann::json& value = state[1][i];
    Aggregate& aggregate = group.aggregates[i];
    switch (spec.aggregates[i].kind) {
      case AggregateKind::kCount: aggregate.count = value.get<std::uint64_t>(); break;
      case AggregateKind::kSum:
      case AggregateKind::kMean:
      case AggregateKind::kMin:
      case AggregateKind::kMax: {
        if (!value.is_array() || value.size() != 2) {
          throw fmt::format("aggregate '{}' is not [count, value]", spec.aggregates[i].name);
        }
        aggregate.count = value[0].get<std::uint64_t>();
        const double number = value[1].get<double>();
        aggregate.sum = aggregate.min = aggregate.max = number;
        break;
      }
      case AggregateKind::kHistogram: {
        if (!value.is_array() || value.size() != aggregate.buckets.size()) {
          throw fmt::format("histogram '{}' does not have {} counts",
                            spec.aggregates[i].name, aggregate.buckets.size());
        }
        aggregate.count = 0;
        for (std::size_t k = 0; k < value.size(); ++k) {
          aggregate.buckets[k] = value[k].get<std::uint64_t>();
          aggregate.count += aggregate.buckets[k];
        }
        break;
      }
    }
  }
}

OrderedJson AggregateResultJson(const AggregateSpec& spec, const Aggregate& aggregate) {
  switch (spec.kind) {
    case AggregateKind::kCount: return aggregate.count;
    case AggregateKind::kSum: return NumberJson(aggregate.sum);
    case AggregateKind::kMin:
      return aggregate.count == 0 ? OrderedJson(nullptr) : NumberJson(aggregate.min);
    case AggregateKind::kMax:
      return aggregate.count == 0 ? OrderedJson(nullptr) : NumberJson(aggregate.max);
    case AggregateKind::kMean:
      return aggregate.count == 0
                 ? OrderedJson(nullptr)
                 : NumberJson(aggregate.sum / static_cast<double>(aggregate.count));
    case AggregateKind::kHistogram: {
      OrderedJson histogram;
      OrderedJson bounds = OrderedJson::array();
      for (double bound : spec.buckets) bounds.push_back(NumberJson(bound));
      histogram["le"] = std::move(bounds);
      histogram["counts"] = aggregate.buckets;
      return histogram;
    }
  }
  return nullptr;
}

// The value order_by sorts on.
double SortValue(const ReduceSpec& spec, const ReduceGroup& group) {
  if (spec.order_by == "items") return static_cast<double>(group.items);
  for (std::size_t i = 0; i < spec.aggregates.size(); ++i) {
    if (spec.aggregates[i].name != spec.order_by) continue;
    const Aggregate& aggregate = group.aggregates[i];
    switch (spec.aggregates[i].kind) {
      case AggregateKind::kCount: return static_cast<double>(aggregate.count);
      case AggregateKind::kSum: return aggregate.sum;
      case AggregateKind::kMin: return aggregate.count == 0 ? -HUGE_VAL : aggregate.min;
      case AggregateKind::kMax: return aggregate.count == 0 ? -HUGE_VAL : aggregate.max;
      case AggregateKind::kMean:
        return aggregate.count == 0 ? -HUGE_VAL
                                    : aggregate.sum / static_cast<double>(aggregate.count);
      case AggregateKind::kHistogram: return 0;
    }
  }
  return 0;
}

}  // namespace

OrderedJson ReduceTable::GroupStateJson(const ReduceGroup& group) const {
  return StateOfGroup(*spec_, group);
}

Result<ReduceGroup> ReduceTable::GroupFromStateJson(const nlohmann::json& state,
                                                    const std::string& where) const {
  ReduceGroup group = NewGroup();
  try {
    ReadGroupState(*spec_, state, group);
  } catch (const nlohmann::json::exception& e) {
    return Corruption(fmt::format("{}: not a reduce group: {}", where, e.what()));
  } catch (const std::string& what) {
    return Corruption(fmt::format("{}: not a reduce group: {}", where, what));
  }
  return group;
}

OrderedJson ReduceTable::StateJson() const {
  OrderedJson groups = OrderedJson::array();
  for (const auto& [key, group] : groups_) {
    OrderedJson entry = StateOfGroup(*spec_, group);
    entry.insert(entry.begin(), OrderedJson::parse(key));
    groups.push_back(std::move(entry));
  }
  OrderedJson state;
  state["groups"] = std::move(groups);
  state["other"] = StateOfGroup(*spec_, other_);
  return state;
}

Result<ReduceTable> ReduceTable::FromStateJson(std::shared_ptr<const ReduceSpec> spec,
                                               const nlohmann::json& state,
                                               const std::string& where) {
  ReduceTable table(std::move(spec));
  try {
    if (!state.is_object() || !state.contains("groups") || !state["groups"].is_array() ||
        !state.contains("other")) {
      throw std::string("expected an object with groups and other");
    }
    for (const nlohmann::json& entry : state["groups"]) {
      if (!entry.is_array() || entry.size() != 3) {
        throw std::string("a group is not [key, items, aggregates]");
      }
      ReduceGroup group = table.NewGroup();
      ReadGroupState(*table.spec_, nlohmann::json::array({entry[1], entry[2]}), group);
      table.AddGroup(DumpJson(OrderedJson(entry[0])), group);
    }
    ReduceGroup other = table.NewGroup();
    ReadGroupState(*table.spec_, state["other"], other);
    table.MergeInto(table.other_, other);
  } catch (const nlohmann::json::exception& e) {
    return Corruption(fmt::format("{}: not a reduce state: {}", where, e.what()));
  } catch (const std::string& what) {
    return Corruption(fmt::format("{}: not a reduce state: {}", where, what));
  }
  return table;
}

OrderedJson ReduceTable::ResultJson() const {
  struct Shown {
    OrderedJson key;
    const ReduceGroup* group;
    double sort_value;
  };
  std::vector<Shown> shown;
  shown.reserve(groups_.size());
  for (const auto& [key, group] : groups_) {
    shown.push_back({OrderedJson::parse(key), &group, SortValue(*spec_, group)});
  }
  std::stable_sort(shown.begin(), shown.end(), [&](const Shown& a, const Shown& b) {
    if (!spec_->order_by.empty() && a.sort_value != b.sort_value) {
      return a.sort_value > b.sort_value;  // the largest first
    }
    return a.key < b.key;
  });
  if (spec_->limit > 0 && shown.size() > spec_->limit) shown.resize(spec_->limit);
  auto group_json = [&](const ReduceGroup& group) {
    OrderedJson object;
    object["items"] = group.items;
    for (std::size_t i = 0; i < spec_->aggregates.size(); ++i) {
      object[spec_->aggregates[i].name] =
          AggregateResultJson(spec_->aggregates[i], group.aggregates[i]);
    }
    return object;
  };
  OrderedJson groups = OrderedJson::array();
  for (const Shown& entry : shown) {
    OrderedJson object;
    object["key"] = entry.key;
    object.update(group_json(*entry.group));
    groups.push_back(std::move(object));
  }
  OrderedJson result;
  result["reduce"] = spec_->name;
  if (spec_->group_by != nullptr) result["group_by"] = spec_->group_by->text();
  result["items"] = items();
  result["groups_kept"] = groups_.size();
  result["groups"] = std::move(groups);
  if (other_.items > 0) result["other"] = group_json(other_);
  return result;
}

}  // namespace sluice
