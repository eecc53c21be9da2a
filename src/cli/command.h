// The subcommand table of the `sluice` tool.
//
// Each subcommand lives in its own file and contributes one Command row: its flags,
// declared as data (Flag), and what runs once they are parsed. main() hands every
// row to CLI11, parses, and runs the chosen one; CLI11 is header-only and costs ~11 s
// of compile time in each file that includes it, so only main.cc does. Adding a
// command is adding a row and a file.
//
// Exit codes, for every command: 0 success, 1 a failure while working (store, I/O),
// 2 a usage error (unknown flag, bad value, invalid pipeline), 130 stopped by a signal.
#ifndef SLUICE_CLI_COMMAND_H_
#define SLUICE_CLI_COMMAND_H_

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace sluice::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitInterrupted = 130;

// Runs a parsed command and returns its exit code.
using CommandRun = std::function<int()>;

// One flag or positional argument of a command.
struct Flag {
  // CLI11's syntax: "--workdir,-w" for a flag, "pipeline" for a positional.
  std::string names = {};
  std::string help = {};
  // Where the parsed value goes: a bool is a switch without a value, a vector a
  // repeatable option.
  std::variant<std::string*, std::vector<std::string>*, double*, bool*> target;
  bool required = false;
  bool existing_file = false;            // each value must name an existing file
  std::vector<std::string> one_of = {};  // if not empty: the allowed values
  std::optional<std::pair<double, double>> range = {};  // within [first, second]
};

// Flags several commands share.
inline Flag PipelineFlag(std::string* target, bool must_exist) {
  return {.names = "pipeline",
          .help = "Pipeline YAML file",
          .target = target,
          .required = true,
          .existing_file = must_exist};
}
inline Flag WorkdirFlag(std::string* target, std::string help = "The run's directory",
                        bool required = true) {
  return {.names = "--workdir,-w",
          .help = std::move(help),
          .target = target,
          .required = required};
}
inline Flag StoreFlag(std::string* target) {
  return {.names = "--store",
          .help =
              "The store: a postgres:// URL (default: $SLUICE_STORE if set, else the "
              "SQLite file in --workdir)",
          .target = target};
}
inline Flag SetFlag(std::vector<std::string>* target,
                    std::string help = "Override a setting: KEY=VALUE") {
  return {.names = "--set", .help = std::move(help), .target = target};
}
inline Flag GroupFlag(std::string* target, std::string help = "Stage group") {
  return {.names = "--group", .help = std::move(help), .target = target};
}

struct Command {
  const char* name;
  const char* summary;
  // Adds the command's flags to `flags` and returns the function that runs it,
  // called after parsing succeeded, with the flags' targets filled in.
  std::function<CommandRun(std::vector<Flag>& flags)> setup;
};

Command RunCommandRow();
Command WorkerCommandRow();  // in run_command.cc: `worker` is `run` without the ingest
Command IngestCommandRow();
Command StatusCommandRow();
Command ExportCommandRow();
Command ValidateCommandRow();
Command RetryCommandRow();
Command PlanCommandRow();
Command ReportCommandRow();
Command TestCommandRow();

// The table, in the order `sluice --help` lists them.
inline std::vector<Command> AllCommands() {
  return {RunCommandRow(),      WorkerCommandRow(), IngestCommandRow(),
          StatusCommandRow(),   ExportCommandRow(), RetryCommandRow(),
          ValidateCommandRow(), TestCommandRow(),   PlanCommandRow(),
          ReportCommandRow()};
}

}  // namespace sluice::cli

#endif  // SLUICE_CLI_COMMAND_H_
