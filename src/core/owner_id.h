// Who a process is, in a form another process can check after a crash.
//
// An owner id is "host:pid:start", where start is the process's start time in clock
// ticks since boot (field 22 of /proc/PID/stat). The start time guards against pid
// reuse, also for a pid 1 that every container has: a new process with the same pid
// has another start time. Owner ids name lease holders in the store and the writers
// of temporary output files.
//
// Thread-safe: these functions only read /proc and the host name.
#ifndef SLUICE_CORE_OWNER_ID_H_
#define SLUICE_CORE_OWNER_ID_H_

#include <string>
#include <string_view>

namespace sluice {

// "host:pid:start" for this process: unique on the host, and checkable by
// IsDeadLocalOwner() after a crash.
std::string OwnerId();

// True if `owner` names a process of this host that no longer runs. An owner of
// another host, or a malformed one, is never judged dead here: only its lease's
// expiry (or its own host) can tell.
bool IsDeadLocalOwner(std::string_view owner);

}  // namespace sluice

#endif  // SLUICE_CORE_OWNER_ID_H_
