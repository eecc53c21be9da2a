// Helpers shared by the subcommands: the workdir, the store in it, the stage
// registry, and printing of errors.
#ifndef SLUICE_CLI_WORKDIR_H_
#define SLUICE_CLI_WORKDIR_H_

#include <memory>
#include <string>

#include "sluice/stage.h"
#include "sluice/status.h"
#include "sluice/store.h"

namespace sluice::cli {

// The store file inside a workdir.
std::string StorePath(const std::string& workdir);

// Opens the store of an existing workdir; an error if there is none.
Result<std::unique_ptr<Store>> OpenExistingStore(const std::string& workdir);

// Creates the workdir if needed and opens (or creates) its store.
Result<std::unique_ptr<Store>> OpenOrCreateStore(const std::string& workdir);

// Every stage type this build of sluice knows.
const StageRegistry& DefaultRegistry();

// Prints "sluice: MESSAGE" to stderr.
void PrintError(const Status& status);

// Exit code for a failed Status: 2 for bad user input, 1 otherwise.
int ExitCodeFor(const Status& status);

}  // namespace sluice::cli

#endif  // SLUICE_CLI_WORKDIR_H_
