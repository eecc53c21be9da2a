// The subcommand table of the `sluice` tool.
//
// Each subcommand lives in its own file and contributes one Command row. main()
// registers every row with CLI11, parses, and runs the chosen one. Adding a command
// is adding a row and a file.
//
// Exit codes, for every command: 0 success, 1 a failure while working (store, I/O),
// 2 a usage error (unknown flag, bad value, invalid pipeline), 130 stopped by a signal.
#ifndef SLUICE_CLI_COMMAND_H_
#define SLUICE_CLI_COMMAND_H_

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace sluice::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitInterrupted = 130;

// Runs a parsed command and returns its exit code.
using CommandRun = std::function<int()>;

struct Command {
  const char* name;
  const char* summary;
  // Declares the command's flags on `app` and returns the function that runs it.
  // The function is called after parsing succeeded, with the flags filled in.
  std::function<CommandRun(CLI::App& app)> setup;
};

Command RunCommandRow();
Command IngestCommandRow();
Command StatusCommandRow();
Command ExportCommandRow();
Command ValidateCommandRow();
Command RetryCommandRow();

// The table, in the order `sluice --help` lists them.
inline std::vector<Command> AllCommands() {
  return {RunCommandRow(),    IngestCommandRow(), StatusCommandRow(),
          ExportCommandRow(), RetryCommandRow(),  ValidateCommandRow()};
}

}  // namespace sluice::cli

#endif  // SLUICE_CLI_COMMAND_H_
