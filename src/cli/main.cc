// sluice: run multi-stage item pipelines over huge inputs. See `sluice --help`.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "src/cli/command.h"

int main(int argc, char** argv) {
  using namespace sluice::cli;
  CLI::App app{"sluice: runs multi-stage item pipelines over huge inputs, resumably"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sluice 0.1.0");
  CommandRun chosen;
  for (const Command& command : AllCommands()) {
    CLI::App* sub = app.add_subcommand(command.name, command.summary);
    CommandRun run = command.setup(*sub);
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
