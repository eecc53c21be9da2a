// sluice: run multi-stage item pipelines over huge inputs. See `sluice --help`.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
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

}  // namespace
}  // namespace sluice::cli

int main(int argc, char** argv) {
  using namespace sluice::cli;
  CLI::App app{"sluice: runs multi-stage item pipelines over huge inputs, resumably"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sluice 0.1.0");
  CommandRun chosen;
  for (const Command& command : AllCommands()) {
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
    fmt::print(stderr, "sluice: {}\nRun with --help for usage.\n", e.what());
    return kExitUsage;
  }
  return chosen ? chosen() : kExitUsage;
}
