#include "src/core/yaml_options.h"

#include <fmt/format.h>

#include <limits>

namespace sluice {
namespace {

// The value as the user wrote it, for messages.
std::string Quoted(const YAML::Node& node) {
  if (node.IsScalar()) return fmt::format("'{}'", node.Scalar());
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "nothing";
}

}  // namespace

YamlOptions::YamlOptions(YAML::Node node, std::string path,
                         std::vector<std::string>* errors,
                         std::set<std::string, std::less<>> ignored_keys)
    : node_(std::move(node)),
      path_(std::move(path)),
      errors_(errors),
      first_error_(errors->size()),
      ignored_keys_(std::move(ignored_keys)) {
  if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
    errors_->push_back(fmt::format("{}: expected a mapping of options, got {}",
                                   path_.empty() ? "top level" : path_, Quoted(node_)));
    node_ = YAML::Node();
  }
}

std::string YamlOptions::KeyPath(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  return fmt::format("{}.{}", path_, key);
}

void YamlOptions::AddError(std::string_view key, std::string_view message) {
  errors_->push_back(fmt::format("{}: {}", KeyPath(key), message));
}

std::optional<YAML::Node> YamlOptions::Lookup(std::string_view key) {
  read_keys_.emplace(key);
  if (!node_.IsDefined() || !node_.IsMap()) return std::nullopt;
  const YAML::Node& map = node_;  // const: a missing key must not be inserted
  YAML::Node value = map[std::string(key)];
  if (!value.IsDefined() || value.IsNull()) return std::nullopt;
  return value;
}

std::optional<YAML::Node> YamlOptions::Scalar(std::string_view key) {
  std::optional<YAML::Node> value = Lookup(key);
  if (value && !value->IsScalar()) {
    AddError(key, fmt::format("expected a single value, got {}", Quoted(*value)));
    return std::nullopt;
  }
  return value;
}

std::int64_t YamlOptions::GetInt(std::string_view key, std::int64_t default_value,
                                 std::int64_t min, std::int64_t max) {
  std::optional<YAML::Node> value = Scalar(key);
  if (!value) return default_value;
  std::int64_t parsed = 0;
  if (!YAML::convert<std::int64_t>::decode(*value, parsed)) {
    AddError(key, fmt::format("expected an integer, got {}", Quoted(*value)));
    return default_value;
  }
  if (parsed < min || parsed > max) {
    AddError(key, fmt::format("{} is out of range [{}, {}]", parsed, min, max));
    return default_value;
  }
  return parsed;
}

double YamlOptions::GetDouble(std::string_view key, double default_value, double min,
                              double max) {
  std::optional<YAML::Node> value = Scalar(key);
  if (!value) return default_value;
  double parsed = 0;
  if (!YAML::convert<double>::decode(*value, parsed) || parsed != parsed) {
    AddError(key, fmt::format("expected a number, got {}", Quoted(*value)));
    return default_value;
  }
  if (parsed < min || parsed > max) {
    AddError(key, fmt::format("{} is out of range [{}, {}]", parsed, min, max));
    return default_value;
  }
  return parsed;
}

bool YamlOptions::GetBool(std::string_view key, bool default_value) {
  std::optional<YAML::Node> value = Scalar(key);
  if (!value) return default_value;
  bool parsed = false;
  if (!YAML::convert<bool>::decode(*value, parsed)) {
    AddError(key, fmt::format("expected true or false, got {}", Quoted(*value)));
    return default_value;
  }
  return parsed;
}

std::string YamlOptions::GetString(std::string_view key, std::string_view default_value) {
  std::optional<YAML::Node> value = Scalar(key);
  if (!value) return std::string(default_value);
  return value->Scalar();
}

std::string YamlOptions::GetChoice(std::string_view key, std::string_view default_value,
                                   const std::vector<std::string>& choices) {
  std::string value = GetString(key, default_value);
  for (const std::string& choice : choices) {
    if (value == choice) return value;
  }
  AddError(key, fmt::format("'{}' is not one of: {}", value, fmt::join(choices, ", ")));
  return std::string(default_value);
}

std::vector<std::string> YamlOptions::GetStringList(
    std::string_view key, const std::vector<std::string>& default_value) {
  std::optional<YAML::Node> found = Lookup(key);
  if (!found) return default_value;
  YAML::Node value = *found;
  if (value.IsScalar()) return {value.Scalar()};
  if (!value.IsSequence()) {
    AddError(key, fmt::format("expected a list of strings, got {}", Quoted(value)));
    return default_value;
  }
  std::vector<std::string> list;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (!value[i].IsScalar()) {
      AddError(fmt::format("{}[{}]", key, i),
               fmt::format("expected a string, got {}", Quoted(value[i])));
      continue;
    }
    list.push_back(value[i].Scalar());
  }
  return list;
}

std::optional<YAML::Node> YamlOptions::GetMapping(std::string_view key) {
  std::optional<YAML::Node> value = Lookup(key);
  if (value && !value->IsMap()) {
    AddError(key, fmt::format("expected a mapping, got {}", Quoted(*value)));
    return std::nullopt;
  }
  return value;
}

std::optional<YAML::Node> YamlOptions::GetSequence(std::string_view key) {
  std::optional<YAML::Node> value = Lookup(key);
  if (value && !value->IsSequence()) {
    AddError(key, fmt::format("expected a list, got {}", Quoted(*value)));
    return std::nullopt;
  }
  return value;
}

Status YamlOptions::Finish() {
  if (node_.IsDefined() && node_.IsMap()) {
    for (const auto& entry : node_) {
      const std::string key = entry.first.Scalar();
      if (read_keys_.count(key) == 0 && ignored_keys_.count(key) == 0) {
        std::vector<std::string> known(read_keys_.begin(), read_keys_.end());
        AddError(key,
                 fmt::format("unknown option (known here: {})", fmt::join(known, ", ")));
      }
    }
  }
  if (errors_->size() > first_error_) return InvalidArgument((*errors_)[first_error_]);
  return Status::Ok();
}

Status ConfigErrorsStatus(std::string_view source,
                          const std::vector<std::string>& errors) {
  if (errors.empty()) return Status::Ok();
  if (errors.size() == 1)
    return InvalidArgument(fmt::format("{}: {}", source, errors[0]));
  return InvalidArgument(fmt::format("{}: {} problems:\n  {}", source, errors.size(),
                                     fmt::join(errors, "\n  ")));
}

}  // namespace sluice
