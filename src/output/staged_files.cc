#include "src/output/staged_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>
#include <system_error>

#include "src/core/owner_id.h"

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

// The tag of a leftover name: what follows its last marker.
std::string_view LeftoverTag(std::string_view name) {
  std::size_t marker = name.rfind(kTempMarker);
  if (marker == std::string_view::npos) marker = name.rfind(kAsideMarker);
  if (marker == std::string_view::npos) return {};
  return name.substr(marker + kTempMarker.size());
}

// The pid at the start of a tag of the earlier format ("PID-N"), or 0.
long LegacyTagPid(std::string_view tag) {
  long pid = 0;
  for (char c : tag) {
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

constexpr std::size_t kHostHashDigits = 12;

// 48 bits of the 64-bit FNV-1a hash of a host name, in hex. Written by one host and
// compared by another, so it must not change between builds or machines (as
// std::hash may). Two hosts sharing a filesystem collide with odds of 2^-48.
std::string HostHash(std::string_view host) {
  std::uint64_t hash = 14695981039346656037ULL;
  for (unsigned char c : host) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return fmt::format("{:0{}x}", hash >> (64 - 4 * kHostHashDigits), kHostHashDigits);
}

bool AllOf(std::string_view text, std::string_view allowed) {
  return text.find_first_not_of(allowed) == std::string_view::npos;
}

constexpr std::string_view kDigits = "0123456789";

std::string OnlyDigits(std::string_view text) {
  std::string digits;
  for (char c : text) {
    if (c >= '0' && c <= '9') digits.push_back(c);
  }
  return digits;
}

// An owner id "host:pid:start" split at its last two ':' (a host name may hold
// one); a malformed id is all host.
struct OwnerFields {
  std::string_view host;
  std::string_view pid;
  std::string_view start;
};
OwnerFields SplitOwner(std::string_view owner) {
  const std::size_t last = owner.rfind(':');
  if (last == std::string_view::npos || last == 0) return {owner, {}, {}};
  const std::size_t middle = owner.rfind(':', last - 1);
  if (middle == std::string_view::npos) return {owner, {}, {}};
  return {owner.substr(0, middle), owner.substr(middle + 1, last - middle - 1),
          owner.substr(last + 1)};
}

// The fields of a tag in WriterTag()'s form, "HOSTHASH-PID-START-N" (START is empty
// where /proc could not be read); nullopt for a tag of another form.
struct WriterFields {
  std::string_view host_hash;
  std::string_view pid;
  std::string_view start;
};
std::optional<WriterFields> ParseWriterTag(std::string_view tag) {
  std::string_view fields[4];
  for (std::size_t i = 0; i < 4; ++i) {
    const std::size_t dash = tag.find('-');
    if ((dash == std::string_view::npos) != (i == 3)) return std::nullopt;
    fields[i] = tag.substr(0, dash);
    tag = dash == std::string_view::npos ? std::string_view() : tag.substr(dash + 1);
  }
  if (fields[0].size() != kHostHashDigits || !AllOf(fields[0], "0123456789abcdef") ||
      fields[1].empty() || !AllOf(fields[1], kDigits) || !AllOf(fields[2], kDigits) ||
      fields[3].empty() || !AllOf(fields[3], kDigits)) {
    return std::nullopt;
  }
  return WriterFields{fields[0], fields[1], fields[2]};
}

enum class Writer { kDead, kLive, kOtherHost };

// Who wrote the leftover `name`, as far as this host (`host`, hashed as
// `host_hash`) can tell.
Writer JudgeWriter(std::string_view name, std::string_view host,
                   std::string_view host_hash) {
  const std::string_view tag = LeftoverTag(name);
  const std::optional<WriterFields> writer = ParseWriterTag(tag);
  if (!writer.has_value()) {
    // The earlier format ".X.tmp-PID-N" (or a tag of no known form): the pid alone.
    return ProcessRuns(LegacyTagPid(tag)) ? Writer::kLive : Writer::kDead;
  }
  if (writer->host_hash != host_hash) return Writer::kOtherHost;
  if (writer->start.empty()) {
    long pid = 0;
    std::from_chars(writer->pid.data(), writer->pid.data() + writer->pid.size(), pid);
    return ProcessRuns(pid) ? Writer::kLive : Writer::kDead;
  }
  const std::string owner = fmt::format("{}:{}:{}", host, writer->pid, writer->start);
  return IsDeadLocalOwner(owner) ? Writer::kDead : Writer::kLive;
}

}  // namespace

bool IsLeftoverName(std::string_view name) {
  return name.size() > 1 && name[0] == '.' &&
         (name.find(kTempMarker) != std::string_view::npos ||
          name.find(kAsideMarker) != std::string_view::npos);
}

std::string WriterTag(std::string_view owner, std::uint64_t n) {
  const OwnerFields fields = SplitOwner(owner);
  return fmt::format("{}-{}-{}-{}", HostHash(fields.host), OnlyDigits(fields.pid),
                     OnlyDigits(fields.start), n);
}

Result<LeftoverCount> RemoveLeftovers(const fs::path& dir) {
  LeftoverCount count;
  std::error_code error;
  if (!fs::is_directory(dir, error)) return count;
  const std::string owner = OwnerId();
  const std::string_view host = SplitOwner(owner).host;
  const std::string host_hash = HostHash(host);
  std::vector<fs::path> leftovers;
  for (fs::directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (!IsLeftoverName(name)) continue;
    switch (JudgeWriter(name, host, host_hash)) {
      case Writer::kDead:
        leftovers.push_back(it->path());
        break;
      case Writer::kLive:
        ++count.kept_live;
        break;
      case Writer::kOtherHost:
        ++count.kept_other_hosts;
        break;
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
    ++count.removed;
  }
  return count;
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
        return WriterTag(OwnerId(), ++counter);
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
  if (published_) return Status::Ok();
  SLUICE_RETURN_IF_ERROR(Sync());
  for (; renamed_ < entries_.size(); ++renamed_) {
    const Entry& entry = entries_[renamed_];
    if (entry.directory) {
      SLUICE_RETURN_IF_ERROR(ReplaceDirectory(entry));
    } else if (rename(entry.temp.c_str(), entry.final.c_str()) != 0) {
      return ErrnoStatus("cannot rename " + entry.temp.string() + " to", entry.final,
                         errno);
    }
  }
  std::set<fs::path> parents;
  for (const Entry& entry : entries_) parents.insert(entry.final.parent_path());
  for (const fs::path& parent : parents) SLUICE_RETURN_IF_ERROR(SyncPath(parent, true));
  published_ = true;
  return Status::Ok();
}

}  // namespace sluice
