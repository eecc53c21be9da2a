// sluice: run multi-stage item pipelines over huge inputs. See `sluice --help`.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include "src/cli/command.h"

namespace sluice::cli {
namespace {

// Declares `flag` on `app`, the only place CLI11 sees a command's flags.
void AddFlag(CLI::App& app, const Flag& flag) {
  CLI::Option* option = std::visit(
      [&](auto* target) -> CLI::Option* {
        if constexpr (std::is_same_v<decltype(target), bool*>) {
          return app.add_flag(flag.names, *target, flag.help);
        } else {
          return app.add_option(flag.names, *target, flag.help);
        }
      },
      flag.target);
  if (flag.required) option->required();
  if (flag.existing_file) option->check(CLI::ExistingFile);
  if (!flag.one_of.empty()) option->check(CLI::IsMember(flag.one_of));
  if (flag.range) option->check(CLI::Range(flag.range->first, flag.range->second));
}

// A usage error before any command was chosen: `args` (what CLI11 could not place)
// names an unknown command, or there was none. Lists the commands; returns the exit
// code.
int CommandUsageError(const std::vector<std::string>& args,
                      const std::vector<Command>& commands) {
  std::string unknown;
  for (const std::string& arg : args) {
    if (!arg.empty() && arg[0] != '-') {
      unknown = arg;
      break;
    }
  }
  if (unknown.empty()) {
    fmt::print(stderr, "sluice: a command is required\n");
  } else {
    fmt::print(stderr, "sluice: unknown command '{}'\n", unknown);
  }
  fmt::print(stderr, "Commands:\n");
  for (const Command& command : commands) {
    fmt::print(stderr, "  {:<10} {}\n", command.name, command.summary);
  }
  fmt::print(stderr, "Run 'sluice COMMAND --help' for the flags of a command.\n");
  return kExitUsage;
}

}  // namespace
}  // namespace sluice::cli

int main(int argc, char** argv) {
  using namespace sluice::cli;
  CLI::App app{"sluice: runs multi-stage item pipelines over huge inputs, resumably"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sluice 0.1.0");
  CommandRun chosen;
  const std::vector<Command> commands = AllCommands();
  for (const Command& command : commands) {
    CLI::App* sub = app.add_subcommand(command.name, command.summary);
    std::vector<Flag> flags;
    CommandRun run = command.setup(flags);
    for (const Flag& flag : flags) AddFlag(*sub, flag);
    sub->callback([&chosen, run] { chosen = run; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // No command chosen: CLI11 would only say "A subcommand is required", even when
    // the first argument is a misspelt command.
    if (app.get_subcommands().empty())
      return CommandUsageError(app.remaining(), commands);
    fmt::print(stderr, "sluice: {}\nRun with --help for usage.\n", e.what());
    return kExitUsage;
  }
  return chosen ? chosen() : kExitUsage;
}
