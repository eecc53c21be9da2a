#include "src/output/tar_shard.h"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include <ctime>
#include <memory>

namespace sluice {
namespace {

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

std::string ArchiveError(archive* a) {
  const char* text = archive_error_string(a);
  return text != nullptr ? text : "unknown libarchive error";
}

}  // namespace

Status WriteTar(const std::string& path, std::span<const TarMember> members) {
  std::unique_ptr<archive, ArchiveDeleter> writer(archive_write_new());
  if (writer == nullptr) return Internal("output: archive_write_new failed");
  archive* a = writer.get();
  if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
      archive_write_add_filter_none(a) != ARCHIVE_OK ||
      // Plain files need no 10 KiB end-of-archive padding.
      archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK) {
    return Internal(
        fmt::format("output: {}: configuring libarchive: {}", path, ArchiveError(a)));
  }
  if (archive_write_open_filename(a, path.c_str()) != ARCHIVE_OK) {
    return IoError(fmt::format("output: cannot create {}: {}", path, ArchiveError(a)));
  }
  const std::time_t now = std::time(nullptr);
  std::unique_ptr<archive_entry, EntryDeleter> entry(archive_entry_new());
  for (const TarMember& member : members) {
    archive_entry_clear(entry.get());
    archive_entry_set_pathname(entry.get(), member.name.c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(member.data.size()));
    archive_entry_set_mtime(entry.get(), now, 0);
    if (archive_write_header(a, entry.get()) != ARCHIVE_OK) {
      return IoError(fmt::format("output: {}: writing the header of {}: {}", path,
                                 member.name, ArchiveError(a)));
    }
    if (!member.data.empty()) {
      la_ssize_t written = archive_write_data(a, member.data.data(), member.data.size());
      if (written < 0 || static_cast<std::size_t>(written) != member.data.size()) {
        return IoError(fmt::format("output: {}: writing {}: {}", path, member.name,
                                   ArchiveError(a)));
      }
    }
  }
  if (archive_write_close(a) != ARCHIVE_OK) {
    return IoError(fmt::format("output: {}: closing: {}", path, ArchiveError(a)));
  }
  return Status::Ok();
}

Status ReadTar(const std::string& path,
               const std::function<void(std::string name, std::string data)>& member) {
  struct ReaderDeleter {
    void operator()(archive* a) const { archive_read_free(a); }
  };
  std::unique_ptr<archive, ReaderDeleter> reader(archive_read_new());
  if (reader == nullptr) return Internal("output: archive_read_new failed");
  archive* a = reader.get();
  archive_read_support_format_tar(a);
  if (archive_read_open_filename(a, path.c_str(), 64 * 1024) != ARCHIVE_OK) {
    return IoError(fmt::format("output: cannot open {}: {}", path, ArchiveError(a)));
  }
  archive_entry* entry = nullptr;
  while (true) {
    int status = archive_read_next_header(a, &entry);
    if (status == ARCHIVE_EOF) break;
    if (status != ARCHIVE_OK) {
      return Corruption(
          fmt::format("output: {}: not a readable tar: {}", path, ArchiveError(a)));
    }
    if (archive_entry_filetype(entry) != AE_IFREG) continue;
    std::string name = archive_entry_pathname(entry);
    std::string data(static_cast<std::size_t>(archive_entry_size(entry)), '\0');
    if (!data.empty() && archive_read_data(a, data.data(), data.size()) !=
                             static_cast<la_ssize_t>(data.size())) {
      return Corruption(fmt::format("output: {}: member {} is truncated: {}", path, name,
                                    ArchiveError(a)));
    }
    member(std::move(name), std::move(data));
  }
  return Status::Ok();
}

}  // namespace sluice
