// Charts as inline SVG text, for `sluice report`'s self-contained HTML page: no
// script, no external asset, readable in any browser and in a file viewer.
#ifndef SLUICE_CLI_SVG_CHART_H_
#define SLUICE_CLI_SVG_CHART_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::cli {

// `text` with &, <, >, " and ' escaped for HTML text and attribute values.
std::string HtmlEscape(std::string_view text);

// 1234.5 -> "1.23k", 0.0123 -> "0.0123": short numbers for axes and tables.
std::string ShortNumber(double value);
// A time per record: "4.5 ms" under a second, "8.36 s" from one.
std::string ShortSeconds(double seconds);

struct ChartSeries {
  std::string name;
  std::vector<double> values;  // one per step
};

// Lines over time: `series` share the x axis, step i at start + i * step seconds
// (labelled as time since the start). `id` becomes the <svg> id; the svg carries
// data-points (the steps drawn) and data-series (the lines) for tests.
std::string TimeChart(std::string_view id, std::string_view title, std::string_view unit,
                      double step_seconds, const std::vector<ChartSeries>& series);

struct ChartBar {
  std::string label;
  double value = 0;
};

// Horizontal bars, one per entry, longest = the largest value; data-points = bars.
std::string BarChart(std::string_view id, std::string_view title, std::string_view unit,
                     const std::vector<ChartBar>& bars);

}  // namespace sluice::cli

#endif  // SLUICE_CLI_SVG_CHART_H_
