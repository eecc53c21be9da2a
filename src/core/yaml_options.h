// Typed, path-aware reading of YAML mappings for pipeline configuration.
//
// YamlOptions implements StageOptions over a yaml-cpp mapping: every getter
// records which keys were read, so Finish() can reject keys nobody asked for
// (usually a typo), and every error names the full YAML path of the bad value.
// Errors accumulate; a caller reports them all at once.
#ifndef SLUICE_CORE_YAML_OPTIONS_H_
#define SLUICE_CORE_YAML_OPTIONS_H_

#include <yaml-cpp/yaml.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sluice/stage.h"

namespace sluice {

// Not thread-safe. Keeps a reference to `errors`, which must outlive it.
class YamlOptions final : public StageOptions {
 public:
  // `node` must be a mapping or null (no options). `ignored_keys` are accepted
  // without being read (e.g. a stage's `name` and `type`).
  YamlOptions(YAML::Node node, std::string path, std::vector<std::string>* errors,
              std::set<std::string, std::less<>> ignored_keys = {});

  const std::string& path() const override { return path_; }

  std::int64_t GetInt(std::string_view key, std::int64_t default_value, std::int64_t min,
                      std::int64_t max) override;
  double GetDouble(std::string_view key, double default_value, double min,
                   double max) override;
  bool GetBool(std::string_view key, bool default_value) override;
  std::string GetString(std::string_view key, std::string_view default_value) override;
  std::string GetChoice(std::string_view key, std::string_view default_value,
                        const std::vector<std::string>& choices) override;
  std::vector<std::string> GetStringList(
      std::string_view key, const std::vector<std::string>& default_value) override;
  void AddError(std::string_view key, std::string_view message) override;

  // The sub-mapping under `key` (marked as read), or nullopt if absent or invalid.
  std::optional<YAML::Node> GetMapping(std::string_view key);
  // The sequence under `key` (marked as read), or nullopt if absent or invalid.
  std::optional<YAML::Node> GetSequence(std::string_view key);

  // Reports unknown keys; returns the first error recorded by this object, if any.
  Status Finish() override;

  // "path.key", or "key" at the root.
  std::string KeyPath(std::string_view key) const;

 private:
  // The value under `key` (marked as read), or nullopt if absent or null.
  std::optional<YAML::Node> Lookup(std::string_view key);
  // The scalar under `key`, or nullopt; records an error if it is not a scalar.
  std::optional<YAML::Node> Scalar(std::string_view key);

  YAML::Node node_;
  std::string path_;
  std::vector<std::string>* errors_;
  std::size_t first_error_;  // index into *errors_ of this object's first error
  std::set<std::string, std::less<>> read_keys_;
  std::set<std::string, std::less<>> ignored_keys_;
};

// Returns a Status listing `errors` one per line under `source`, or ok if empty.
Status ConfigErrorsStatus(std::string_view source,
                          const std::vector<std::string>& errors);

}  // namespace sluice

#endif  // SLUICE_CORE_YAML_OPTIONS_H_
