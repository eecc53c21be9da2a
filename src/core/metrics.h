// Metrics in the Prometheus text exposition format (version 0.0.4), for
// `--metrics-addr` (docs/operations.md lists the names).
//
// The hot path keeps only plain counters, under locks it takes anyway (the
// runtime's per stage, the worker's per batch): nothing here is called per record.
// A scrape reads them (Worker::Progress(), Worker::StageProgress()) and writes the
// text with MetricsText.
#ifndef SLUICE_CORE_METRICS_H_
#define SLUICE_CORE_METRICS_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

// Seconds per record, in buckets: a stage's time per record, from under a
// millisecond (a hash) to a minute (a download through retries).
struct SecondsHistogram {
  static constexpr std::array<double, 16> kBounds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
      0.25,   0.5,   1,      2.5,   5,    10,    30,    60};
  std::array<std::uint64_t, kBounds.size() + 1> counts{};  // the last: over 60 s
  double sum = 0;
  std::uint64_t count = 0;

  // `records` records that took `seconds` each.
  void Observe(double seconds, std::uint64_t records = 1);
};

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// Writes one exposition: a family's # HELP and # TYPE once, then its samples.
class MetricsText {
 public:
  // Starts the family `name` (a valid metric name, sluice_ first by convention) of
  // `type` ("counter", "gauge" or "histogram"), unless it was started already.
  void Family(std::string_view name, std::string_view type, std::string_view help);
  // One sample of the family started last.
  void Sample(std::string_view name, const MetricLabels& labels, double value);
  // A histogram's samples: NAME_bucket{le=...} (cumulative), NAME_sum, NAME_count.
  void Histogram(std::string_view name, const MetricLabels& labels,
                 const SecondsHistogram& histogram);
  const std::string& text() const { return text_; }

  // `name` with every character a metric name may not hold replaced by '_'.
  static std::string SanitizeName(std::string_view name);

 private:
  std::string text_;
  std::vector<std::string> families_;
};

}  // namespace sluice

#endif  // SLUICE_CORE_METRICS_H_
