#include "src/core/blob_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace sluice {
namespace fs = std::filesystem;
namespace {

Status Errno(std::string_view what, const fs::path& path, int error) {
  return IoError(
      fmt::format("blobs: cannot {} {}: {}", what, path.string(), std::strerror(error)));
}

Status WriteAll(int fd, std::string_view bytes, const fs::path& path) {
  while (!bytes.empty()) {
    const ssize_t wrote = write(fd, bytes.data(), bytes.size());
    if (wrote < 0) {
      if (errno == EINTR) continue;
      return Errno("write", path, errno);
    }
    bytes.remove_prefix(static_cast<std::size_t>(wrote));
  }
  return Status::Ok();
}

Status SyncDirectory(const fs::path& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open", dir, errno);
  const int synced = fsync(fd);
  const int error = errno;
  close(fd);
  if (synced != 0) return Errno("sync", dir, error);
  return Status::Ok();
}

// What marks a temporary file of a writer in its hidden name.
constexpr char kTempMarker[] = ".tmp-";

// A name is a relative path of plain components: no "..", no absolute path, no
// empty component, nothing a caller could use to leave the directory.
bool IsSafeName(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.back() == '/') return false;
  std::size_t start = 0;
  while (start <= name.size()) {
    const std::size_t end = std::min(name.find('/', start), name.size());
    const std::string_view part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == ".." || part.front() == '.') return false;
    start = end + 1;
  }
  return name.find('\0') == std::string_view::npos;
}

// A blob being written: a hidden temporary file beside its final name, renamed
// into place by Commit().
class DirectoryWriter final : public BlobStore::Writer {
 public:
  DirectoryWriter(fs::path path, fs::path temp, int fd)
      : path_(std::move(path)), temp_(std::move(temp)), fd_(fd) {}
  ~DirectoryWriter() override {
    if (fd_ >= 0) close(fd_);
    if (!committed_) unlink(temp_.c_str());  // nothing to report: it is being dropped
  }

  Status Append(std::string_view bytes) override {
    if (fd_ < 0) return Internal("blobs: Append after Commit of " + path_.string());
    return WriteAll(fd_, bytes, temp_);
  }

  Status Commit() override {
    if (fd_ < 0) return Internal("blobs: Commit twice of " + path_.string());
    Status written = Status::Ok();
    if (fsync(fd_) != 0) written = Errno("sync", temp_, errno);
    if (close(fd_) != 0 && written.ok()) written = Errno("close", temp_, errno);
    fd_ = -1;
    if (written.ok() && rename(temp_.c_str(), path_.c_str()) != 0) {
      written = Errno("rename into place", path_, errno);
    }
    SLUICE_RETURN_IF_ERROR(written);
    committed_ = true;
    return SyncDirectory(path_.parent_path());
  }

 private:
  const fs::path path_;
  const fs::path temp_;
  int fd_;
  bool committed_ = false;
};

class DirectoryReader final : public BlobStore::Reader {
 public:
  DirectoryReader(fs::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~DirectoryReader() override { close(fd_); }
  DirectoryReader(const DirectoryReader&) = delete;
  DirectoryReader& operator=(const DirectoryReader&) = delete;

  Result<std::size_t> Read(char* into, std::size_t size) override {
    for (;;) {
      const ssize_t got = read(fd_, into, size);
      if (got >= 0) return static_cast<std::size_t>(got);
      if (errno != EINTR) return Errno("read", path_, errno);
    }
  }

 private:
  const fs::path path_;
  const int fd_;
};

class DirectoryBlobStore final : public BlobStore {
 public:
  explicit DirectoryBlobStore(fs::path dir) : dir_(std::move(dir)) {}

  Result<std::unique_ptr<Writer>> StartPut(std::string_view name) override {
    SLUICE_ASSIGN_OR_RETURN(fs::path path, PathOf(name));
    std::error_code error;
    fs::create_directories(path.parent_path(), error);
    if (error) {
      return IoError(fmt::format("blobs: cannot create {}: {}",
                                 path.parent_path().string(), error.message()));
    }
    // Hidden, and unique to this process and call: List() never shows it, and two
    // writers never share one.
    fs::path temp =
        path.parent_path() / fmt::format(".{}{}{}-{}", path.filename().string(),
                                         kTempMarker, getpid(), next_temp_.fetch_add(1));
    const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("create", temp, errno);
    return std::unique_ptr<Writer>(
        std::make_unique<DirectoryWriter>(std::move(path), std::move(temp), fd));
  }

  Result<std::uint64_t> RemoveAbandoned(std::string_view prefix,
                                        std::chrono::seconds age) override {
    SLUICE_ASSIGN_OR_RETURN(PrefixPlace place, PlaceOf(prefix));
    const fs::path& dir = place.dir;
    const std::string hidden_prefix = "." + place.file_prefix;
    std::error_code error;
    fs::directory_iterator it(dir, error);
    if (error) {
      if (error == std::errc::no_such_file_or_directory) return std::uint64_t{0};
      return IoError(
          fmt::format("blobs: cannot list {}: {}", dir.string(), error.message()));
    }
    const auto now = fs::file_time_type::clock::now();
    std::uint64_t removed = 0;
    for (const fs::directory_entry& entry : it) {
      const std::string file = entry.path().filename().string();
      if (!file.starts_with(hidden_prefix) ||
          file.find(kTempMarker) == std::string::npos) {
        continue;
      }
      const auto written = entry.last_write_time(error);
      if (error || now - written < age) continue;
      if (unlink(entry.path().c_str()) == 0) ++removed;
    }
    return removed;
  }

  Result<std::unique_ptr<Reader>> OpenRead(std::string_view name) override {
    SLUICE_ASSIGN_OR_RETURN(fs::path path, PathOf(name));
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) {
        return NotFound(fmt::format("blobs: no {} in {}", name, dir_.string()));
      }
      return Errno("open", path, errno);
    }
    return std::unique_ptr<Reader>(std::make_unique<DirectoryReader>(std::move(path), fd));
  }

  Status Remove(std::string_view name) override {
    SLUICE_ASSIGN_OR_RETURN(fs::path path, PathOf(name));
    if (unlink(path.c_str()) != 0 && errno != ENOENT) return Errno("remove", path, errno);
    return Status::Ok();
  }

  Result<std::vector<std::string>> List(std::string_view prefix) override {
    SLUICE_ASSIGN_OR_RETURN(PrefixPlace place, PlaceOf(prefix));
    const fs::path& dir = place.dir;
    const std::string& sub = place.sub;
    std::vector<std::string> names;
    std::error_code error;
    fs::directory_iterator it(dir, error);
    if (error) {
      if (error == std::errc::no_such_file_or_directory) return names;
      return IoError(
          fmt::format("blobs: cannot list {}: {}", dir.string(), error.message()));
    }
    for (const fs::directory_entry& entry : it) {
      const std::string file = entry.path().filename().string();
      if (file.starts_with('.')) continue;  // a Put() in progress, or dead
      std::string name = sub.empty() ? file : sub + "/" + file;
      if (name.starts_with(prefix) && !entry.is_directory(error)) {
        names.push_back(std::move(name));
      }
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string Describe() const override { return "blobs " + dir_.string(); }

 private:
  // Where a name prefix points: its directory part names the one directory to read
  // ("" = the top), the rest is how the file names there begin.
  struct PrefixPlace {
    std::string sub;
    fs::path dir;
    std::string file_prefix;
  };
  Result<PrefixPlace> PlaceOf(std::string_view prefix) const {
    const std::size_t slash = prefix.rfind('/');
    PrefixPlace place;
    if (slash != std::string_view::npos) place.sub = std::string(prefix.substr(0, slash));
    if (!place.sub.empty() && !IsSafeName(place.sub)) {
      return InvalidArgument(fmt::format("blobs: not a blob name prefix: {}", prefix));
    }
    place.dir = place.sub.empty() ? dir_ : dir_ / place.sub;
    place.file_prefix =
        std::string(prefix.substr(slash == std::string_view::npos ? 0 : slash + 1));
    return place;
  }

  Result<fs::path> PathOf(std::string_view name) const {
    if (!IsSafeName(name)) {
      return InvalidArgument(fmt::format("blobs: not a blob name: '{}'", name));
    }
    return dir_ / std::string(name);
  }

  const fs::path dir_;
  std::atomic<std::uint64_t> next_temp_{0};
};

}  // namespace

Result<std::string> BlobStore::Get(std::string_view name) {
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<Reader> reader, OpenRead(name));
  std::string bytes;
  char buffer[1 << 16];
  for (;;) {
    SLUICE_ASSIGN_OR_RETURN(std::size_t got, reader->Read(buffer, sizeof(buffer)));
    if (got == 0) return bytes;
    bytes.append(buffer, got);
  }
}

Status BlobStore::Put(std::string_view name, std::string_view bytes) {
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<Writer> writer, StartPut(name));
  SLUICE_RETURN_IF_ERROR(writer->Append(bytes));
  return writer->Commit();
}

Result<std::unique_ptr<BlobStore>> OpenDirectoryBlobStore(const fs::path& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error || !fs::is_directory(dir)) {
    return IoError(fmt::format("blobs: cannot create the directory {}: {}", dir.string(),
                               error ? error.message() : "not a directory"));
  }
  return std::unique_ptr<BlobStore>(std::make_unique<DirectoryBlobStore>(dir));
}

std::string PayloadName(std::string_view group, BatchId batch, std::uint64_t token) {
  return fmt::format("{}{}", PayloadPrefix(group, batch), token);
}

std::string PayloadPrefix(std::string_view group, BatchId batch) {
  return fmt::format("{}/{:010}.t", group, batch);
}

std::optional<PayloadKey> ParsePayloadName(std::string_view name) {
  const std::size_t slash = name.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  const std::string_view file = name.substr(slash + 1);
  const std::size_t dot = file.find(".t");
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  PayloadKey key;
  key.group = std::string(name.substr(0, slash));
  const std::string_view batch = file.substr(0, dot);
  const std::string_view token = file.substr(dot + 2);
  auto parsed = std::from_chars(batch.data(), batch.data() + batch.size(), key.batch);
  if (parsed.ec != std::errc() || parsed.ptr != batch.data() + batch.size()) {
    return std::nullopt;
  }
  parsed = std::from_chars(token.data(), token.data() + token.size(), key.token);
  if (token.empty() || parsed.ec != std::errc() ||
      parsed.ptr != token.data() + token.size()) {
    return std::nullopt;
  }
  return key;
}

}  // namespace sluice
