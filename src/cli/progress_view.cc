#include "src/cli/progress_view.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace sluice::cli {
namespace {

std::string Thousands(std::uint64_t value) {
  const std::string digits = std::to_string(value);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string PerRecord(const SecondsHistogram& seconds) {
  if (seconds.count == 0) return "";
  const double each = seconds.sum / static_cast<double>(seconds.count);
  return each >= 1 ? fmt::format("{:.2f} s/record", each)
                   : fmt::format("{:.2f} ms/record", each * 1000);
}

}  // namespace

std::string EtaText(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  const auto s = static_cast<std::uint64_t>(std::llround(seconds));
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d{:02}h", s / 86400, s % 86400 / 3600);
}

std::vector<std::string> ProgressLines(const ProgressFrame& frame, int width) {
  std::vector<std::string> lines;
  const bool named = frame.groups.size() > 1;
  for (const auto& [group, stages] : frame.groups) {
    for (const StageCounters& stage : stages) {
      const std::string name = named ? group + "/" + stage.name : stage.name;
      std::string line = fmt::format("  {:<18} {:>12} in {:>9} failed", name,
                                     Thousands(stage.records_in),
                                     Thousands(stage.records_failed));
      if (stage.async) line += fmt::format(" {:>7} in flight", Thousands(stage.in_flight));
      if (stage.queued_chunks > 0) line += fmt::format(" {:>4} chunks queued", stage.queued_chunks);
      if (const std::string each = PerRecord(stage.seconds); !each.empty()) {
        line += "  " + each;
      }
      lines.push_back(std::move(line));
    }
  }
  const double fraction =
      frame.total == 0 ? 1.0
                       : std::min(1.0, static_cast<double>(frame.done) /
                                           static_cast<double>(frame.total));
  const int filled = static_cast<int>(std::lround(fraction * width));
  const double left = static_cast<double>(frame.total - std::min(frame.total, frame.done));
  const std::string eta = left == 0 ? "done" : frame.rate > 0 ? EtaText(left / frame.rate) : "?";
  lines.push_back(fmt::format("[{}{}] {:.1f}% {}/{} items, {:.0f} items/s, ETA {}, committed {}, "
                              "failed {}",
                              std::string(static_cast<std::size_t>(filled), '#'),
                              std::string(static_cast<std::size_t>(width - filled), '-'),
                              100 * fraction, Thousands(frame.done), Thousands(frame.total),
                              frame.rate, eta, Thousands(frame.committed),
                              Thousands(frame.failed)));
  if (!frame.failures.empty()) {
    std::vector<std::pair<std::uint64_t, std::string>> top;
    for (const auto& [reason, count] : frame.failures) top.emplace_back(count, reason);
    std::sort(top.rbegin(), top.rend());
    std::string line = "  top failures:";
    for (std::size_t i = 0; i < top.size() && i < 5; ++i) {
      line += fmt::format("{} {} {}", i == 0 ? "" : ",", top[i].second, Thousands(top[i].first));
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string Redraw(const std::vector<std::string>& lines, std::size_t previous) {
  std::string out;
  if (previous > 0) out += fmt::format("\x1b[{}A", previous);  // back to the block's top
  for (const std::string& line : lines) out += "\x1b[2K" + line + "\n";
  // A block shorter than the last: clear what is left of it below.
  for (std::size_t i = lines.size(); i < previous; ++i) out += "\x1b[2K\n";
  if (previous > lines.size()) out += fmt::format("\x1b[{}A", previous - lines.size());
  return out;
}

}  // namespace sluice::cli
