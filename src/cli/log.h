// The one logger of the sluice command (spdlog, on standard error): every warning,
// error and status line goes through Log(), as text ("sluice: MESSAGE", the default)
// or, with `--log-format json`, one JSON object per line for a log collector:
//   {"time":"2026-12-03T17:54:08.123Z","level":"warning","message":"..."}
// The live progress view of a terminal (progress_view.h) is not a log and stays out.
//
// Thread-safety: Log() may be called from any thread; SetLogFormat() before others.
#ifndef SLUICE_CLI_LOG_H_
#define SLUICE_CLI_LOG_H_

#include <cstdint>
#include <string_view>

namespace sluice::cli {

enum class LogLevel { kInfo, kWarning, kError };
enum class LogFormat { kText, kJson };

void SetLogFormat(LogFormat format);
void Log(LogLevel level, std::string_view message);

// How many lines Log() has written so far: the terminal's progress view draws itself
// anew below a line logged since its last drawing, instead of over it.
std::uint64_t LoggedLines();

}  // namespace sluice::cli

#endif  // SLUICE_CLI_LOG_H_
