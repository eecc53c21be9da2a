// What a running `sluice run` is doing right now, for `sluice status` to show while
// it runs: records in flight (the runtime's own count), done and committed, leases
// held. The store knows only what was committed; this is the rest.
//
// Each running process keeps WORKDIR/workers/PID.json current (rewritten every
// couple of seconds under a temporary name and renamed, so a reader never sees half
// a file) and removes it when it ends. A file whose writer is no longer alive (a
// crash: its owner id names a dead process of this host) is ignored and removed.
//
// Thread-safety: free functions; concurrent writers write different files.
#ifndef SLUICE_CLI_LIVE_STATUS_H_
#define SLUICE_CLI_LIVE_STATUS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "sluice/status.h"
#include "src/core/worker.h"

namespace sluice::cli {

struct LiveStatus {
  std::string owner;            // the worker's owner id (host:pid:start)
  std::int64_t updated_ms = 0;  // wall clock, milliseconds since the epoch
  WorkerProgress progress;
};

// Writes this process's file. Errors name the path.
Status WriteLiveStatus(const std::string& workdir, const LiveStatus& status);

// Removes this process's file (no error if it is missing).
void RemoveLiveStatus(const std::string& workdir);

// The files of live processes, oldest owner first; those of dead processes of this
// host are removed. Files that cannot be parsed are skipped.
std::vector<LiveStatus> ReadLiveStatuses(const std::string& workdir);

}  // namespace sluice::cli

#endif  // SLUICE_CLI_LIVE_STATUS_H_
