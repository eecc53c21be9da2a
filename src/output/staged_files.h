// StagedFiles: files and directories written under temporary names, then made
// durable and renamed over their final names together.
//
// How a batch's outputs become visible (DESIGN.md guarantee 2):
//  1. Each output is written under a temporary name in its final directory:
//     ".NAME.tmp-TAG", a file or a whole directory of files. TAG names the writer
//     and is unique to it: "HOST-PID-START-N" (see WriterTag), where HOST is a hash
//     of the host name, PID and START the process's id and start time (OwnerId(),
//     src/core/owner_id.h), and N a counter of this process.
//  2. Publish() flushes them to disk: fsync for each staged file; one syncfs() of
//     the filesystem for staged directories (a thousand fsyncs per batch would make
//     the single collector thread the bottleneck), and then
//  3. renames each over its final name, and fsyncs the directories holding them so
//     that the renames themselves survive a power loss.
//
// A staged directory replaces an existing one of the same name atomically with
// renameat2(RENAME_EXCHANGE): readers see the old directory or the new one, never a
// mix, and no file of an earlier attempt survives. Where the filesystem lacks it
// (EINVAL: e.g. some network filesystems), the old directory is first renamed aside
// to ".NAME.old-TAG"; a crash between the two renames leaves no directory under the
// final name for an instant, which is harmless because the batch is not committed
// yet (it is redone). The replaced directory is then removed.
//
// A crash at any point leaves at most temporary or set-aside names, which readers
// skip (IsLeftoverName) and RemoveLeftovers() deletes at the next run start, when
// their writer is a process of this host that no longer runs. The start time in the
// tag tells a dead writer from a new process that got its pid (in a container,
// sluice is pid 1 at every start); the host hash keeps the leftovers of writers on
// other hosts sharing the filesystem, which no host can judge.
//
// Thread-safety: not thread-safe; one instance per batch being written. Several
// instances (even in several processes) may stage the same final names at once:
// their temporary names differ, and the last rename wins.
#ifndef SLUICE_OUTPUT_STAGED_FILES_H_
#define SLUICE_OUTPUT_STAGED_FILES_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/status.h"

namespace sluice {

// True for the temporary and set-aside names StagedFiles uses (".X.tmp-T",
// ".X.old-T"): what a crashed writer may leave behind.
bool IsLeftoverName(std::string_view name);

// The tag of the temporary names of writer `owner` (an OwnerId(): "host:pid:start")
// with counter `n`: "HHHHHHHHHHHH-PID-START-N", HHHHHHHHHHHH being 48 bits of a
// stable hash of the host name in hex. Only hex digits, decimal digits and '-',
// whatever the host name holds, so it is part of a valid file name, and short.
std::string WriterTag(std::string_view owner, std::uint64_t n);

// What RemoveLeftovers() found.
struct LeftoverCount {
  std::uint64_t removed = 0;    // of writers of this host that no longer run
  std::uint64_t kept_live = 0;  // of writers of this host that still run
  // Of writers on other hosts (the host hash in the tag is not this host's): whether
  // they still run cannot be told from here, so they are kept for a person to remove.
  std::uint64_t kept_other_hosts = 0;
};

// Removes the leftover entries (files and directories) directly inside `dir` whose
// writer is a process of this host that no longer runs (host hash, pid and start
// time of the tag, checked with IsDeadLocalOwner()); keeps those of live processes
// and of other hosts. Names of the earlier format ".X.tmp-PID-N" (no host, no start
// time) are judged by the pid alone: removed unless a process of that pid runs. A
// missing `dir` is fine.
Result<LeftoverCount> RemoveLeftovers(const std::filesystem::path& dir);

// Writes `contents` to `path` (created or truncated), without syncing it.
Status WritePlainFile(const std::filesystem::path& path, std::string_view contents);

class StagedFiles {
 public:
  StagedFiles();
  // Removes whatever was staged and not published.
  ~StagedFiles();

  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;

  // Writes `contents` to a temporary file in `dir` (created if missing), fsync'd,
  // to become `dir/name` at Publish().
  Status AddFile(const std::filesystem::path& dir, std::string_view name,
                 std::string_view contents);

  // Reserves a temporary path in `dir` (created if missing) for a file the caller
  // writes itself (e.g. through libarchive), to become `dir/name` at Publish().
  Result<std::filesystem::path> AddExternalFile(const std::filesystem::path& dir,
                                                std::string_view name);

  // Creates an empty temporary directory in `parent` (created if missing), to
  // replace `parent/name` at Publish(). The caller fills it with WritePlainFile().
  Result<std::filesystem::path> AddDirectory(const std::filesystem::path& parent,
                                             std::string_view name);

  // Makes everything staged durable and renames it into place (see the top of the
  // file). On error, what was already renamed stays and the error names the path;
  // a later call resumes with the rest (a commit retried after its first try was
  // cut off), and once a call succeeded, further calls do nothing. What was never
  // renamed is removed by the destructor.
  Status Publish();

  // Only the flush of step 2, so that Publish() has only renames left (the worker
  // publishes inside the store's commit transaction, and keeps it short). Publish()
  // after Sync() does not flush again.
  Status Sync();

 private:
  struct Entry {
    std::filesystem::path temp;   // where it was written
    std::filesystem::path final;  // where it goes
    bool directory = false;
    bool synced = false;  // already fsync'd (AddFile)
  };

  // The temporary name of `name` for this instance.
  std::string TempName(std::string_view name) const;
  // Renames a staged directory over `entry.final`, removing the old one.
  Status ReplaceDirectory(const Entry& entry) const;

  const std::string tag_;  // WriterTag(): unique among the writers of all hosts
  std::vector<Entry> entries_;
  std::size_t renamed_ = 0;  // entries_[0, renamed_) are in place
  bool published_ = false;   // every entry in place and its directory synced
  bool synced_ = false;      // Sync() succeeded
};

}  // namespace sluice

#endif  // SLUICE_OUTPUT_STAGED_FILES_H_
