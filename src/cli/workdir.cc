#include "src/cli/workdir.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>

#include "sluice/pipeline.h"
#include "src/cli/command.h"
#include "src/cli/log.h"
#include "src/run/run_setup.h"
#include "src/store/postgres_store.h"
#include "src/store/sqlite_store.h"

namespace sluice::cli {

Result<StoreAddress> ResolveStoreAddress(const std::string& workdir,
                                         const std::string& store_flag) {
  StoreAddress address{workdir, store_flag};
  std::string_view source = "--store";
  if (address.url.empty()) {
    const char* env = std::getenv("SLUICE_STORE");
    if (env != nullptr && *env != '\0') {
      address.url = env;
      source = "$SLUICE_STORE";
    }
  }
  if (!address.url.empty() && !IsPostgresUrl(address.url)) {
    return InvalidArgument(fmt::format(
        "{}: not a store address (expected postgres://... or postgresql://...)", source));
  }
  if (address.url.empty() && address.workdir.empty()) {
    return InvalidArgument("give --workdir DIR or --store postgres://...");
  }
  return address;
}

std::string DescribeStore(const StoreAddress& address) {
  if (address.url.empty()) return "--workdir " + address.workdir;
  // postgres://user:password@host/db -> postgres://user:***@host/db
  static const std::regex kPassword(R"(^(postgres(?:ql)?://[^:/@]*):[^@/]*@)");
  return "--store " + std::regex_replace(address.url, kPassword, "$1:***@");
}

Result<std::unique_ptr<Store>> OpenExistingStore(const StoreAddress& address) {
  if (!address.url.empty()) {
    PostgresStoreOptions options;
    options.create_if_missing = false;
    auto store = OpenPostgresStore(address.url, options);
    if (!store.ok() && store.status().code() == StatusCode::kNotFound) {
      return InvalidArgument(fmt::format("{}: {} (`sluice ingest` or `run` makes it)",
                                         DescribeStore(address), store.status().message()));
    }
    return store;
  }
  const std::string& workdir = address.workdir;
  std::error_code error;
  if (!std::filesystem::is_directory(workdir, error)) {
    return InvalidArgument(fmt::format("--workdir {}: no such directory", workdir));
  }
  std::string path = WorkdirStorePath(workdir);
  if (!std::filesystem::exists(path, error)) {
    return InvalidArgument(fmt::format(
        "--workdir {}: no sluice store here (expected {}; `sluice run` makes it)",
        workdir, path));
  }
  return OpenSqliteStore(path);
}

Result<std::unique_ptr<Store>> OpenOrCreateStore(const StoreAddress& address) {
  if (!address.url.empty()) return OpenPostgresStore(address.url);
  const std::string& workdir = address.workdir;
  std::error_code error;
  std::filesystem::create_directories(workdir, error);
  if (error) {
    return IoError(
        fmt::format("--workdir {}: cannot create: {}", workdir, error.message()));
  }
  return OpenSqliteStore(WorkdirStorePath(workdir));
}

const StageRegistry& DefaultRegistry() {
  static const StageRegistry registry = [] {
    StageRegistry r;
    // A stage's log lines (an exec subprocess's stderr) are the command's log's.
    Status registered =
        RegisterAllStages(r, [](std::string_view line) { Log(LogLevel::kInfo, line); });
    if (!registered.ok()) {
      // Fixed, distinct names: only a bug gets here.
      std::fprintf(stderr, "sluice: %s\n", registered.ToString().c_str());
      std::abort();
    }
    return r;
  }();
  return registry;
}

std::unique_ptr<Store> OpenStoreOfFlags(const std::string& workdir, const std::string& store,
                                        int* exit_code) {
  Result<StoreAddress> address = ResolveStoreAddress(workdir, store);
  if (!address.ok()) {
    PrintError(address.status());
    *exit_code = kExitUsage;
    return nullptr;
  }
  Result<std::unique_ptr<Store>> opened = OpenExistingStore(*address);
  if (!opened.ok()) {
    PrintError(opened.status());
    *exit_code = ExitCodeFor(opened.status());
    return nullptr;
  }
  return std::move(opened).value();
}

void PrintError(const Status& status) { Log(LogLevel::kError, status.ToString()); }

int ExitCodeFor(const Status& status) {
  return status.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
}

}  // namespace sluice::cli
