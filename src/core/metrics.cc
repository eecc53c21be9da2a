#include "src/core/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace sluice {
namespace {

// A label value as the format quotes it: backslash, double quote and newline escaped.
std::string Escaped(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

std::string LabelText(const MetricLabels& labels) {
  if (labels.empty()) return "";
  std::string text = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    text += fmt::format("{}{}=\"{}\"", i == 0 ? "" : ",",
                        MetricsText::SanitizeName(labels[i].first), Escaped(labels[i].second));
  }
  return text + "}";
}

}  // namespace

void SecondsHistogram::Observe(double seconds, std::uint64_t records) {
  const auto bucket =
      std::lower_bound(kBounds.begin(), kBounds.end(), seconds) - kBounds.begin();
  counts[static_cast<std::size_t>(bucket)] += records;
  sum += seconds * static_cast<double>(records);
  count += records;
}

void MetricsText::Family(std::string_view name, std::string_view type,
                         std::string_view help) {
  const std::string clean = SanitizeName(name);
  if (std::find(families_.begin(), families_.end(), clean) != families_.end()) return;
  families_.push_back(clean);
  std::string one_line(help);
  std::replace(one_line.begin(), one_line.end(), '\n', ' ');
  text_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", clean, one_line, clean, type);
}

void MetricsText::Sample(std::string_view name, const MetricLabels& labels,
                         double value) {
  text_ += fmt::format("{}{} {}\n", SanitizeName(name), LabelText(labels), Number(value));
}

void MetricsText::Histogram(std::string_view name, const MetricLabels& labels,
                            const SecondsHistogram& histogram) {
  const std::string clean = SanitizeName(name);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= SecondsHistogram::kBounds.size(); ++i) {
    cumulative += histogram.counts[i];
    MetricLabels with_le = labels;
    with_le.emplace_back("le", i < SecondsHistogram::kBounds.size()
                                   ? Number(SecondsHistogram::kBounds[i])
                                   : "+Inf");
    Sample(fmt::format("{}_bucket", clean), with_le, static_cast<double>(cumulative));
  }
  Sample(fmt::format("{}_sum", clean), labels, histogram.sum);
  Sample(fmt::format("{}_count", clean), labels, static_cast<double>(histogram.count));
}

std::string MetricsText::SanitizeName(std::string_view name) {
  std::string clean(name);
  for (std::size_t i = 0; i < clean.size(); ++i) {
    const char c = clean[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    c == ':' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) clean[i] = '_';
  }
  if (clean.empty()) clean.push_back('_');
  return clean;
}

}  // namespace sluice
