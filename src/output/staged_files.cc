#include "src/output/staged_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <system_error>

namespace sluice {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kTempMarker = ".tmp-";
constexpr std::string_view kAsideMarker = ".old-";

std::string ErrnoText(int error) { return std::strerror(error); }

Status ErrnoStatus(std::string_view what, const fs::path& path, int error) {
  return IoError(fmt::format("output: {} {}: {}", what, path.string(), ErrnoText(error)));
}

// Closes a file descriptor on scope exit.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  int get() const { return fd_; }
  // Closes now, returning close()'s errno (0 on success).
  int Close() {
    int result = close(fd_);
    fd_ = -1;
    return result == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

Status WriteAll(int fd, std::string_view contents, const fs::path& path) {
  const char* data = contents.data();
  std::size_t left = contents.size();
  while (left > 0) {
    ssize_t written = write(fd, data, left);
    if (written < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", path, errno);
    }
    data += written;
    left -= static_cast<std::size_t>(written);
  }
  return Status::Ok();
}

Status CreateDirectories(const fs::path& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    return IoError(fmt::format("output: cannot create directory {}: {}", dir.string(),
                               error.message()));
  }
  return Status::Ok();
}

// fsync of a file or directory by path.
Status SyncPath(const fs::path& path, bool directory) {
  int fd =
      open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_WRONLY) | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open for fsync", path, errno);
  FdCloser closer(fd);
  if (fsync(fd) != 0) return ErrnoStatus("fsync", path, errno);
  return Status::Ok();
}

// The pid in a leftover's tag (".X.tmp-PID-N"), or 0.
long LeftoverPid(std::string_view name) {
  std::size_t marker = name.rfind(kTempMarker);
  if (marker == std::string_view::npos) marker = name.rfind(kAsideMarker);
  if (marker == std::string_view::npos) return 0;
  long pid = 0;
  for (char c : name.substr(marker + kTempMarker.size())) {
    if (c < '0' || c > '9') break;
    pid = pid * 10 + (c - '0');
    if (pid > 1'000'000'000) return 0;
  }
  return pid;
}

// True if `pid` names a running process on this host (maybe still writing).
bool ProcessRuns(long pid) {
  return pid > 0 && (kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

}  // namespace

bool IsLeftoverName(std::string_view name) {
  return name.size() > 1 && name[0] == '.' &&
         (name.find(kTempMarker) != std::string_view::npos ||
          name.find(kAsideMarker) != std::string_view::npos);
}

Result<std::uint64_t> RemoveLeftovers(const fs::path& dir) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) return std::uint64_t{0};
  std::vector<fs::path> leftovers;
  for (fs::directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    const std::string name = it->path().filename().string();
    // A live writer's own names are not leftovers (its pid is in the tag).
    if (IsLeftoverName(name) && !ProcessRuns(LeftoverPid(name))) {
      leftovers.push_back(it->path());
    }
  }
  if (error) {
    return IoError(
        fmt::format("output: cannot list {}: {}", dir.string(), error.message()));
  }
  for (const fs::path& leftover : leftovers) {
    fs::remove_all(leftover, error);
    if (error) {
      return IoError(fmt::format("output: cannot remove leftover {}: {}",
                                 leftover.string(), error.message()));
    }
  }
  return static_cast<std::uint64_t>(leftovers.size());
}

Status WritePlainFile(const fs::path& path, std::string_view contents) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("cannot create", path, errno);
  FdCloser closer(fd);
  SLUICE_RETURN_IF_ERROR(WriteAll(fd, contents, path));
  if (int error = closer.Close(); error != 0) return ErrnoStatus("close", path, error);
  return Status::Ok();
}

StagedFiles::StagedFiles()
    : tag_([] {
        static std::atomic<std::uint64_t> counter{0};
        return fmt::format("{}-{}", static_cast<long>(getpid()), ++counter);
      }()) {}

StagedFiles::~StagedFiles() {
  for (const Entry& entry : entries_) {
    std::error_code ignored;
    fs::remove_all(entry.temp, ignored);  // no-op for what was renamed into place
  }
}

std::string StagedFiles::TempName(std::string_view name) const {
  return fmt::format(".{}{}{}", name, kTempMarker, tag_);
}

Status StagedFiles::AddFile(const fs::path& dir, std::string_view name,
                            std::string_view contents) {
  SLUICE_RETURN_IF_ERROR(CreateDirectories(dir));
  Entry entry{dir / TempName(name), dir / std::string(name), false, true};
  int fd = open(entry.temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("cannot create", entry.temp, errno);
  entries_.push_back(entry);  // from here on, the destructor removes it on failure
  FdCloser closer(fd);
  SLUICE_RETURN_IF_ERROR(WriteAll(fd, contents, entry.temp));
  if (fsync(fd) != 0) return ErrnoStatus("fsync", entry.temp, errno);
  if (int error = closer.Close(); error != 0) {
    return ErrnoStatus("close", entry.temp, error);
  }
  return Status::Ok();
}

Result<fs::path> StagedFiles::AddExternalFile(const fs::path& dir,
                                              std::string_view name) {
  SLUICE_RETURN_IF_ERROR(CreateDirectories(dir));
  entries_.push_back(Entry{dir / TempName(name), dir / std::string(name), false, false});
  return entries_.back().temp;
}

Result<fs::path> StagedFiles::AddDirectory(const fs::path& parent,
                                           std::string_view name) {
  SLUICE_RETURN_IF_ERROR(CreateDirectories(parent));
  Entry entry{parent / TempName(name), parent / std::string(name), true, false};
  if (mkdir(entry.temp.c_str(), 0755) != 0) {
    return ErrnoStatus("cannot create directory", entry.temp, errno);
  }
  entries_.push_back(entry);
  return entry.temp;
}

Status StagedFiles::ReplaceDirectory(const Entry& entry) const {
  if (rename(entry.temp.c_str(), entry.final.c_str()) == 0) return Status::Ok();
  if (errno != EEXIST && errno != ENOTEMPTY) {
    return ErrnoStatus("cannot rename " + entry.temp.string() + " to", entry.final,
                       errno);
  }
  // The final name holds an earlier attempt. Swap the two in one step; the temporary
  // name then holds the old directory.
  std::error_code error;
  if (renameat2(AT_FDCWD, entry.temp.c_str(), AT_FDCWD, entry.final.c_str(),
                RENAME_EXCHANGE) == 0) {
    fs::remove_all(entry.temp, error);
    if (error) {
      return IoError(fmt::format("output: cannot remove the replaced {}: {}",
                                 entry.temp.string(), error.message()));
    }
    return Status::Ok();
  }
  if (errno != EINVAL && errno != ENOSYS) {
    return ErrnoStatus("cannot exchange " + entry.temp.string() + " with", entry.final,
                       errno);
  }
  // No RENAME_EXCHANGE here: set the old directory aside first. A crash between the
  // two renames leaves no directory under the final name, and the set-aside one as a
  // leftover; the batch is not committed yet, so it is redone.
  const fs::path aside =
      entry.final.parent_path() /
      fmt::format(".{}{}{}", entry.final.filename().string(), kAsideMarker, tag_);
  if (rename(entry.final.c_str(), aside.c_str()) != 0) {
    return ErrnoStatus("cannot move aside", entry.final, errno);
  }
  if (rename(entry.temp.c_str(), entry.final.c_str()) != 0) {
    return ErrnoStatus("cannot rename " + entry.temp.string() + " to", entry.final,
                       errno);
  }
  fs::remove_all(aside, error);
  if (error) {
    return IoError(fmt::format("output: cannot remove the replaced {}: {}",
                               aside.string(), error.message()));
  }
  return Status::Ok();
}

Status StagedFiles::Sync() {
  if (synced_) return Status::Ok();
  bool any_directory = false;
  for (Entry& entry : entries_) {
    if (entry.directory) {
      any_directory = true;
    } else if (!entry.synced) {
      SLUICE_RETURN_IF_ERROR(SyncPath(entry.temp, false));
      entry.synced = true;
    }
  }
  if (any_directory) {
    // One flush of each filesystem holding a staged directory, for all its files.
    std::set<dev_t> synced_devices;
    for (const Entry& entry : entries_) {
      if (!entry.directory) continue;
      int fd = open(entry.temp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) return ErrnoStatus("open", entry.temp, errno);
      FdCloser closer(fd);
      struct stat info {};
      if (fstat(fd, &info) != 0) return ErrnoStatus("stat", entry.temp, errno);
      if (!synced_devices.insert(info.st_dev).second) continue;
      if (syncfs(fd) != 0) return ErrnoStatus("syncfs", entry.temp, errno);
    }
  }
  synced_ = true;
  return Status::Ok();
}

Status StagedFiles::Publish() {
  if (published_) return Internal("output: StagedFiles::Publish called twice");
  published_ = true;
  SLUICE_RETURN_IF_ERROR(Sync());
  std::set<fs::path> parents;
  for (const Entry& entry : entries_) {
    if (entry.directory) {
      SLUICE_RETURN_IF_ERROR(ReplaceDirectory(entry));
    } else if (rename(entry.temp.c_str(), entry.final.c_str()) != 0) {
      return ErrnoStatus("cannot rename " + entry.temp.string() + " to", entry.final,
                         errno);
    }
    parents.insert(entry.final.parent_path());
  }
  for (const fs::path& parent : parents) SLUICE_RETURN_IF_ERROR(SyncPath(parent, true));
  return Status::Ok();
}

}  // namespace sluice
