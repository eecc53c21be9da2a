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

// Where a command's store is: the SQLite file in `workdir`, or the PostgreSQL
// database at `url`.
struct StoreAddress {
  std::string workdir;  // "" when not given
  std::string url;      // "" for the workdir's SQLite file
};

// The address a command uses: --store if given, else $SLUICE_STORE if set (so that
// a password in the URL need not be on the command line), else the workdir's file.
// InvalidArgument when the URL is not postgres:// or postgresql://, or when there is
// neither a URL nor a workdir.
Result<StoreAddress> ResolveStoreAddress(const std::string& workdir,
                                         const std::string& store_flag);

// For messages: "--store URL" with the URL's password replaced by ***, or
// "--workdir DIR".
std::string DescribeStore(const StoreAddress& address);

// Opens an existing store; an error if there is none.
Result<std::unique_ptr<Store>> OpenExistingStore(const StoreAddress& address);

// The existing store --workdir or --store names, for a command that reads it; when
// that fails, prints why, sets `*exit_code` (usage or failure) and returns nullptr.
std::unique_ptr<Store> OpenStoreOfFlags(const std::string& workdir, const std::string& store,
                                        int* exit_code);

// Opens (or creates) the store; for a workdir's file, creates the workdir if needed.
Result<std::unique_ptr<Store>> OpenOrCreateStore(const StoreAddress& address);

// Every stage type this build of sluice knows.
const StageRegistry& DefaultRegistry();

// Prints "sluice: MESSAGE" to stderr.
void PrintError(const Status& status);

// Exit code for a failed Status: 2 for bad user input, 1 otherwise.
int ExitCodeFor(const Status& status);

}  // namespace sluice::cli

#endif  // SLUICE_CLI_WORKDIR_H_
