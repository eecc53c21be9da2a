// The live progress view of `sluice run` / `sluice worker` on a terminal
// (`--progress bar`, the default there): a block of lines redrawn in place, one per
// stage (records through, failed, in flight, backlog, time per record) and one for
// the run (a bar, items done of total, rate, ETA, the most frequent failures).
// Not on a terminal (`--progress plain`) the status line of before is printed.
#ifndef SLUICE_CLI_PROGRESS_VIEW_H_
#define SLUICE_CLI_PROGRESS_VIEW_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "src/core/runtime.h"

namespace sluice::cli {

struct ProgressFrame {
  std::uint64_t total = 0;      // items of the run
  std::uint64_t done = 0;       // through the pipeline (committed or not)
  std::uint64_t committed = 0;
  std::uint64_t failed = 0;
  double rate = 0;              // items/s, recently
  // Per stage group (in order), its stages' counters.
  std::vector<std::pair<std::string, std::vector<StageCounters>>> groups;
  std::map<std::string, std::uint64_t> failures;  // by reason
};

// The lines of the view, without escape codes; `width` columns for the bar.
std::vector<std::string> ProgressLines(const ProgressFrame& frame, int width = 30);

// "3m52s", "2h05m", "4d03h"; "?" when unknown (no rate yet).
std::string EtaText(double seconds);

// Redraws `lines` in place of the `previous` lines drawn last (0: the first time):
// cursor up, then each line cleared and written.
std::string Redraw(const std::vector<std::string>& lines, std::size_t previous);

}  // namespace sluice::cli

#endif  // SLUICE_CLI_PROGRESS_VIEW_H_
