// The names of the counters workers report to the store (WorkerReport's
// counters_json and sample_json): "name" or "name{label=value,...}", values never
// quoted ("stage_records_total{stage=fetch}", "stage_seconds_bucket{stage=fetch,le=0.5}").
#ifndef SLUICE_CLI_COUNTER_KEYS_H_
#define SLUICE_CLI_COUNTER_KEYS_H_

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace sluice::cli {

struct CounterKey {
  std::string name;
  std::map<std::string, std::string> labels;

  // The label's value, "" if it has none.
  std::string Label(const std::string& label) const {
    auto it = labels.find(label);
    return it == labels.end() ? std::string() : it->second;
  }
};

// "name{a=1,b=2}" -> {name, {a: 1, b: 2}}; a key without braces has no labels. A
// label without '=' is kept with an empty value.
inline CounterKey ParseCounterKey(std::string_view key) {
  CounterKey parsed;
  const std::size_t open = key.find('{');
  if (open == std::string_view::npos || key.back() != '}') {
    parsed.name = std::string(key);
    return parsed;
  }
  parsed.name = std::string(key.substr(0, open));
  std::string_view rest = key.substr(open + 1, key.size() - open - 2);
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string_view pair = rest.substr(0, comma);
    const std::size_t equals = pair.find('=');
    parsed.labels[std::string(pair.substr(0, equals))] =
        equals == std::string_view::npos ? std::string() : std::string(pair.substr(equals + 1));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return parsed;
}

// The unsigned numbers of a reported JSON object of counters; {} for "" or anything
// that is not such an object (a report from a newer or damaged writer is skipped, not
// fatal).
inline std::map<std::string, std::uint64_t> ParseCounters(const std::string& json) {
  std::map<std::string, std::uint64_t> counters;
  if (json.empty()) return counters;
  const nlohmann::json parsed = nlohmann::json::parse(json, nullptr, false);
  if (!parsed.is_object()) return counters;
  for (const auto& [key, value] : parsed.items()) {
    if (value.is_number_unsigned()) counters[key] = value.get<std::uint64_t>();
  }
  return counters;
}

}  // namespace sluice::cli

#endif  // SLUICE_CLI_COUNTER_KEYS_H_
