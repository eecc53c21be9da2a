#include "src/cli/workdir.h"

#include <fmt/format.h>

#include <filesystem>

#include "src/cli/command.h"
#include "src/stages/builtin_stages.h"
#include "src/stages/faces_stage.h"
#include "src/stages/fetch_stage.h"
#include "src/stages/hash_stage.h"
#include "src/stages/image_stages.h"
#include "src/store/sqlite_store.h"

namespace sluice::cli {

std::string StorePath(const std::string& workdir) {
  return (std::filesystem::path(workdir) / "sluice.db").string();
}

Result<std::unique_ptr<Store>> OpenExistingStore(const std::string& workdir) {
  std::error_code error;
  if (!std::filesystem::is_directory(workdir, error)) {
    return InvalidArgument(fmt::format("--workdir {}: no such directory", workdir));
  }
  std::string path = StorePath(workdir);
  if (!std::filesystem::exists(path, error)) {
    return InvalidArgument(fmt::format(
        "--workdir {}: no sluice store here (expected {}; `sluice run` makes it)",
        workdir, path));
  }
  return OpenSqliteStore(path);
}

Result<std::unique_ptr<Store>> OpenOrCreateStore(const std::string& workdir) {
  std::error_code error;
  std::filesystem::create_directories(workdir, error);
  if (error) {
    return IoError(
        fmt::format("--workdir {}: cannot create: {}", workdir, error.message()));
  }
  return OpenSqliteStore(StorePath(workdir));
}

const StageRegistry& DefaultRegistry() {
  static const StageRegistry registry = [] {
    StageRegistry r;
    RegisterBuiltinStages(r);
    RegisterImageStages(r);
    RegisterFaceStages(r);
    RegisterFetchStage(r);
    RegisterHashStage(r);
    return r;
  }();
  return registry;
}

void PrintError(const Status& status) {
  fmt::print(stderr, "sluice: {}\n", status.ToString());
}

int ExitCodeFor(const Status& status) {
  return status.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
}

}  // namespace sluice::cli
