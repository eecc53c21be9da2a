// MapStageOptions: StageOptions over a map of strings, standing in for the YAML-backed
// one in the stages' unit tests. Test-only; not thread-safe.
#ifndef SLUICE_STAGES_MAP_STAGE_OPTIONS_TEST_UTIL_H_
#define SLUICE_STAGES_MAP_STAGE_OPTIONS_TEST_UTIL_H_

#include <charconv>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/stage.h"

namespace sluice::testing {

class MapStageOptions final : public StageOptions {
 public:
  explicit MapStageOptions(std::map<std::string, std::string> values)
      : values_(std::move(values)) {}

  const std::string& path() const override { return path_; }
  std::int64_t GetInt(std::string_view key, std::int64_t default_value, std::int64_t min,
                      std::int64_t max) override {
    const std::string* text = Use(key);
    if (text == nullptr) return default_value;
    std::int64_t value = 0;
    auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (error != std::errc() || end != text->data() + text->size() || value < min ||
        value > max) {
      AddError(key, "must be an integer in range");
      return default_value;
    }
    return value;
  }
  double GetDouble(std::string_view key, double default_value, double min,
                   double max) override {
    const std::string* text = Use(key);
    if (text == nullptr) return default_value;
    char* end = nullptr;
    const double value = std::strtod(text->c_str(), &end);
    if (text->empty() || end != text->c_str() + text->size() || !(value >= min) ||
        !(value <= max)) {
      AddError(key, "must be a number in range");
      return default_value;
    }
    return value;
  }
  bool GetBool(std::string_view key, bool default_value) override {
    const std::string* text = Use(key);
    if (text == nullptr) return default_value;
    if (*text != "true" && *text != "false") AddError(key, "must be true or false");
    return *text == "true";
  }
  std::string GetString(std::string_view key, std::string_view default_value) override {
    const std::string* text = Use(key);
    return text == nullptr ? std::string(default_value) : *text;
  }
  std::string GetChoice(std::string_view key, std::string_view default_value,
                        const std::vector<std::string>& choices) override {
    std::string value = GetString(key, default_value);
    for (const std::string& choice : choices) {
      if (choice == value) return value;
    }
    AddError(key, "not a valid choice");
    return std::string(default_value);
  }
  std::vector<std::string> GetStringList(
      std::string_view key, const std::vector<std::string>& default_value) override {
    const std::string* text = Use(key);
    return text == nullptr ? default_value : std::vector<std::string>{*text};
  }
  void AddError(std::string_view key, std::string_view message) override {
    errors_.push_back(path_ + "." + std::string(key) + ": " + std::string(message));
  }
  Status Finish() override {
    if (!errors_.empty()) return InvalidArgument(errors_.front());
    for (const auto& [key, value] : values_) {
      if (!used_.contains(key)) return InvalidArgument(path_ + ": unknown option " + key);
    }
    return Status::Ok();
  }

 private:
  const std::string* Use(std::string_view key) {
    auto it = values_.find(std::string(key));
    if (it == values_.end()) return nullptr;
    used_.insert(it->first);
    return &it->second;
  }

  const std::string path_ = "stages[1]";
  std::map<std::string, std::string> values_;
  std::set<std::string> used_;
  std::vector<std::string> errors_;
};

}  // namespace sluice::testing

#endif  // SLUICE_STAGES_MAP_STAGE_OPTIONS_TEST_UTIL_H_
