#include "src/cli/svg_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace sluice::cli {
namespace {

constexpr const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                    "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                    "#bcbd22", "#17becf"};
constexpr std::size_t kColourCount = sizeof(kColours) / sizeof(kColours[0]);

constexpr int kWidth = 900;
constexpr int kHeight = 260;
constexpr int kLeft = 64;    // room for the y axis' labels
constexpr int kRight = 170;  // room for the legend
constexpr int kTop = 28;
constexpr int kBottom = 30;

// The smallest of 1, 2, 5 times a power of ten that is at least `value`.
double NiceCeiling(double value) {
  if (!(value > 0)) return 1;
  const double power = std::pow(10.0, std::floor(std::log10(value)));
  for (double factor : {1.0, 2.0, 5.0, 10.0}) {
    if (factor * power >= value * (1 - 1e-9)) return factor * power;
  }
  return 10 * power;
}

// Seconds since the start as "2.5s", "42s", "7m", "3h10m", "2d4h".
std::string Elapsed(double seconds) {
  if (seconds < 20 && std::abs(seconds - std::round(seconds)) > 0.05) {
    return fmt::format("{:.1f}s", seconds);
  }
  const auto s = static_cast<std::int64_t>(std::llround(seconds));
  if (s < 120) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m", s / 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d{}h", s / 86400, s % 86400 / 3600);
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string ShortNumber(double value) {
  const double magnitude = std::abs(value);
  if (magnitude >= 1e9) return fmt::format("{:.3g}G", value / 1e9);
  if (magnitude >= 1e6) return fmt::format("{:.3g}M", value / 1e6);
  if (magnitude >= 1e4) return fmt::format("{:.3g}k", value / 1e3);
  return fmt::format("{:.4g}", value);
}

std::string ShortSeconds(double seconds) {
  if (seconds < 1) return fmt::format("{:.3g} ms", seconds * 1000);
  return fmt::format("{:.3g} s", seconds);
}

std::string TimeChart(std::string_view id, std::string_view title, std::string_view unit,
                      double step_seconds, const std::vector<ChartSeries>& series) {
  std::size_t steps = 0;
  double top = 0;
  for (const ChartSeries& s : series) {
    steps = std::max(steps, s.values.size());
    for (double v : s.values) top = std::max(top, v);
  }
  top = NiceCeiling(top);
  const int plot_w = kWidth - kLeft - kRight;
  const int plot_h = kHeight - kTop - kBottom;
  std::string svg = fmt::format(
      "<svg id=\"{}\" class=\"chart\" data-points=\"{}\" data-series=\"{}\" width=\"{}\" "
      "height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\">\n"
      "<text x=\"{}\" y=\"18\" class=\"title\">{} ({})</text>\n",
      HtmlEscape(id), steps, series.size(), kWidth, kHeight, kWidth, kHeight,
      HtmlEscape(title), kLeft, HtmlEscape(title), HtmlEscape(unit));
  // Axes and grid: four horizontal lines, up to eight time labels.
  for (int i = 0; i <= 4; ++i) {
    const double y = kTop + plot_h - plot_h * i / 4.0;
    svg += fmt::format(
        "<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" class=\"grid\"/>"
        "<text x=\"{}\" y=\"{:.1f}\" class=\"axis\" text-anchor=\"end\">{}</text>\n",
        kLeft, y, kLeft + plot_w, y, kLeft - 6, y + 4, ShortNumber(top * i / 4.0));
  }
  const double span = step_seconds * static_cast<double>(std::max<std::size_t>(steps, 1));
  for (int i = 0; i <= 6; ++i) {
    const double x = kLeft + plot_w * i / 6.0;
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{}\" class=\"axis\" text-anchor=\"middle\">{}</text>\n", x,
        kHeight - 10, Elapsed(span * i / 6.0));
  }
  if (steps == 0) {
    svg += fmt::format("<text x=\"{}\" y=\"{}\" class=\"axis\">no samples</text>\n",
                       kLeft + 20, kTop + plot_h / 2);
  }
  // Each series: a polyline through the middle of its steps (a lone step: a dot).
  for (std::size_t s = 0; s < series.size(); ++s) {
    const char* colour = kColours[s % kColourCount];
    std::string points;
    const std::vector<double>& values = series[s].values;
    for (std::size_t i = 0; i < values.size(); ++i) {
      const double x = kLeft + plot_w * (static_cast<double>(i) + 0.5) /
                                   static_cast<double>(std::max<std::size_t>(steps, 1));
      const double y = kTop + plot_h - plot_h * std::clamp(values[i] / top, 0.0, 1.0);
      points += fmt::format("{:.1f},{:.1f} ", x, y);
      if (values.size() == 1) {
        svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>", x, y,
                           colour);
      }
    }
    svg += fmt::format(
        "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n"
        "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/>"
        "<text x=\"{}\" y=\"{}\" class=\"legend\">{}</text>\n",
        colour, points, kWidth - kRight + 12, kTop + 16 * static_cast<int>(s), colour,
        kWidth - kRight + 26, kTop + 9 + 16 * static_cast<int>(s),
        HtmlEscape(series[s].name));
  }
  svg += "</svg>\n";
  return svg;
}

std::string BarChart(std::string_view id, std::string_view title, std::string_view unit,
                     const std::vector<ChartBar>& bars) {
  constexpr int kBar = 18;
  constexpr int kLabel = 220;
  const int height = kTop + kBar * static_cast<int>(std::max<std::size_t>(bars.size(), 1)) + 10;
  double top = 0;
  for (const ChartBar& bar : bars) top = std::max(top, bar.value);
  if (!(top > 0)) top = 1;
  std::string svg = fmt::format(
      "<svg id=\"{}\" class=\"chart\" data-points=\"{}\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\">\n"
      "<text x=\"8\" y=\"18\" class=\"title\">{} ({})</text>\n",
      HtmlEscape(id), bars.size(), kWidth, height, kWidth, height, HtmlEscape(title),
      HtmlEscape(title), HtmlEscape(unit));
  if (bars.empty()) {
    svg += fmt::format("<text x=\"{}\" y=\"{}\" class=\"axis\">none</text>\n", kLabel,
                       kTop + 12);
  }
  const int room = kWidth - kLabel - 90;
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const int y = kTop + kBar * static_cast<int>(i);
    const double w = room * std::clamp(bars[i].value / top, 0.0, 1.0);
    svg += fmt::format(
        "<text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"end\">{}</text>"
        "<rect x=\"{}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"{}\"/>"
        "<text x=\"{:.1f}\" y=\"{}\" class=\"axis\">{}</text>\n",
        kLabel - 6, y + 13, HtmlEscape(bars[i].label), kLabel, y + 2, std::max(w, 1.0),
        kBar - 4, kColours[0], kLabel + w + 6, y + 13, ShortNumber(bars[i].value));
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace sluice::cli
