#include "src/output/file_batch_output.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "src/core/owner_id.h"
#include "src/output/batch_metadata.h"
#include "src/output/staged_files.h"
#include "src/output/tar_shard.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

constexpr char kCaptionColumn[] = "caption";

constexpr char kSpillDir[] = "spill";

// What an ok item saves: its image bytes and their extension. `data` points into the
// record's field, or into `owned` when the bytes were read back from a spill file.
struct ItemImage {
  std::span<const std::uint8_t> data;
  std::string ext;
  std::shared_ptr<const Bytes> owned;
};

// An image's bytes moved out of memory while its batch waited (FileBatchOutput::
// Spill): where they are in the batch's spill file.
class SpilledImage final : public Payload {
 public:
  SpilledImage(fs::path path, std::uint64_t offset, std::uint64_t size)
      : path_(std::move(path)), offset_(offset), size_(size) {}
  std::string Describe() const override {
    return fmt::format("{} bytes spilled to {}", size_, path_.string());
  }
  std::uint64_t size() const { return size_; }

  // The bytes, read back.
  Result<Bytes> Read() const {
    const int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return IoError(fmt::format("output: cannot open {}: {}", path_.string(),
                                 std::strerror(errno)));
    }
    Bytes bytes(size_);
    std::uint64_t done = 0;
    while (done < size_) {
      const ssize_t got = pread(fd, bytes.data() + done, size_ - done,
                                static_cast<off_t>(offset_ + done));
      if (got <= 0) {
        const int error = got == 0 ? EIO : errno;
        if (error == EINTR) continue;
        close(fd);
        return IoError(fmt::format("output: cannot read {} at {}: {}", path_.string(),
                                   offset_ + done, std::strerror(error)));
      }
      done += static_cast<std::uint64_t>(got);
    }
    close(fd);
    return bytes;
  }

 private:
  const fs::path path_;
  const std::uint64_t offset_;
  const std::uint64_t size_;
};

bool IsExtension(std::string_view ext) {
  if (ext.empty() || ext.size() > 8) return false;
  for (char c : ext) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

// The text field `name` of `record`, or nullptr.
const std::string* TextField(const Record& record, std::string_view name) {
  const Value* value = record.Find(name);
  return value == nullptr ? nullptr : std::get_if<std::string>(value);
}

Result<ItemImage> FindItemImage(const Record& record, const std::string& image_field) {
  const Value* value = record.Find(image_field);
  const Bytes* bytes = value == nullptr ? nullptr : std::get_if<Bytes>(value);
  ItemImage found;
  if (bytes != nullptr) {
    found.data = *bytes;
  } else if (const auto* payload =
                 value == nullptr ? nullptr
                                  : std::get_if<std::shared_ptr<const Payload>>(value)) {
    if (const auto* spilled = dynamic_cast<const SpilledImage*>(payload->get())) {
      Result<Bytes> read = spilled->Read();
      if (!read.ok())
        return read.status().WithContext(fmt::format("item {}", record.id()));
      found.owned = std::make_shared<const Bytes>(std::move(read).value());
      found.data = *found.owned;
      bytes = found.owned.get();
    }
  }
  if (bytes == nullptr) {
    return InvalidArgument(fmt::format(
        "output: item {} is ok but has no \"{}\" bytes to save as its image (add an "
        "encode stage, or set output.image_field)",
        record.id(), image_field));
  }
  // Where the extension comes from, first found: encode's "ext" (which must be
  // one), decode's "format", fetch's "content_type"; else "bin".
  const std::string* ext_field = TextField(record, "ext");
  if (ext_field != nullptr) {
    if (!IsExtension(*ext_field)) {
      return InvalidArgument(fmt::format(
          "output: item {}: \"ext\" field '{}' is not a file extension (1 to 8 of "
          "a-z, 0-9)",
          record.id(), *ext_field));
    }
    found.ext = *ext_field;
    return found;
  }
  std::string ext = "bin";
  if (const std::string* format = TextField(record, "format")) {
    ext = *format == "jpeg" ? "jpg" : *format;
  } else if (const std::string* type = TextField(record, "content_type")) {
    const std::size_t slash = type->find('/');
    ext = slash == std::string::npos ? "" : type->substr(slash + 1);
    if (ext == "jpeg") ext = "jpg";
    if (ext == "svg+xml") ext = "svg";
  }
  if (!IsExtension(ext)) ext = "bin";
  found.ext = std::move(ext);
  return found;
}

std::string Slurp(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

std::string_view AsText(std::span<const std::uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace

FileBatchOutput::FileBatchOutput(OutputConfig config, std::uint32_t batch_size,
                                 fs::path root)
    : config_(std::move(config)),
      root_(std::move(root)),
      flavour_(MakeOutputFlavour(config_, batch_size)) {}

fs::path FileBatchOutput::DirOf(const OutputName& name) const {
  return name.dir.empty() ? root_ : root_ / name.dir;
}

std::optional<ItemId> FileBatchOutput::ItemOfName(const FinishedBatch& batch,
                                                  std::string_view name) const {
  const std::size_t dot = name.find('.');
  if (dot == 0 || dot == std::string_view::npos) return std::nullopt;
  return flavour_->ItemOfKey(batch, name.substr(0, dot));
}

Status FileBatchOutput::Prepare() {
  std::error_code error;
  fs::create_directories(root_, error);
  if (error) {
    return IoError(fmt::format("output: cannot create directory {}: {}", root_.string(),
                               error.message()));
  }
  leftovers_ = LeftoverCount{};
  std::vector<fs::path> dirs;
  for (const std::string& dir : flavour_->Dirs()) {
    dirs.push_back(dir.empty() ? root_ : root_ / dir);
  }
  dirs.push_back(root_ / kSpillDir);
  for (const fs::path& dir : dirs) {
    SLUICE_ASSIGN_OR_RETURN(LeftoverCount found, RemoveLeftovers(dir));
    leftovers_.removed += found.removed;
    leftovers_.kept_live += found.kept_live;
    leftovers_.kept_other_hosts += found.kept_other_hosts;
    if (found.kept_other_hosts > 0) {
      fmt::print(stderr,
                 "sluice: output: kept {} temporary name(s) of writers on other hosts "
                 "in {} (this host cannot tell whether they still run): remove them "
                 "once those writers are gone\n",
                 found.kept_other_hosts, dir.string());
    }
  }
  return Status::Ok();
}

Status FileBatchOutput::StageImageFiles(const FinishedBatch& batch,
                                        std::span<const Record> records,
                                        const std::set<ItemId>& redone,
                                        StagedFiles& staged, std::uint64_t* bytes,
                                        std::vector<std::string>* kept_metadata) const {
  const OutputName name = flavour_->Name(OutputFile::kImages, batch);
  const fs::path old_dir = DirOf(name) / name.name;
  SLUICE_ASSIGN_OR_RETURN(fs::path dir, staged.AddDirectory(DirOf(name), name.name));
  // Files of items not redone this time (after `sluice retry`) carry over: linked,
  // not copied.
  std::error_code error;
  if (fs::is_directory(old_dir, error)) {
    for (fs::directory_iterator it(old_dir, error), end; !error && it != end;
         it.increment(error)) {
      const std::string file = it->path().filename().string();
      const std::optional<ItemId> id = ItemOfName(batch, file);
      if (!id.has_value() || redone.contains(*id)) continue;
      if (link(it->path().c_str(), (dir / file).c_str()) != 0) {
        return IoError(fmt::format("output: cannot link {} into {}: {}",
                                   it->path().string(), dir.string(),
                                   std::strerror(errno)));
      }
      std::error_code size_error;
      const std::uintmax_t size = fs::file_size(it->path(), size_error);
      if (!size_error) *bytes += size;
      if (file.ends_with(".json")) kept_metadata->push_back(Slurp(it->path()));
    }
    if (error) {
      return IoError(
          fmt::format("output: cannot list {}: {}", old_dir.string(), error.message()));
    }
  }
  for (const Record& record : records) {
    if (record.failed()) continue;
    SLUICE_ASSIGN_OR_RETURN(ItemImage image, FindItemImage(record, config_.image_field));
    const std::string key = flavour_->ItemKey(batch, record.id());
    const std::string metadata = flavour_->ItemJson(batch, record);
    SLUICE_RETURN_IF_ERROR(
        WritePlainFile(dir / (key + "." + image.ext), AsText(image.data)));
    SLUICE_RETURN_IF_ERROR(WritePlainFile(dir / (key + ".json"), metadata));
    *bytes += image.data.size() + metadata.size();
    if (const std::string* caption = record.FindColumn(kCaptionColumn)) {
      SLUICE_RETURN_IF_ERROR(WritePlainFile(dir / (key + ".txt"), *caption));
      *bytes += caption->size();
    }
  }
  return Status::Ok();
}

Status FileBatchOutput::StageShard(const FinishedBatch& batch,
                                   std::span<const Record> records,
                                   const std::set<ItemId>& redone, StagedFiles& staged,
                                   std::uint64_t* bytes,
                                   std::vector<std::string>* kept_metadata) const {
  const OutputName name = flavour_->Name(OutputFile::kShard, batch);
  // Members by item id; each item's members in the order written. They reference
  // the records' bytes and the texts kept here.
  std::deque<std::string> texts;
  std::vector<std::shared_ptr<const Bytes>> read_back;
  std::vector<std::pair<ItemId, TarMember>> members;
  const fs::path old_shard = DirOf(name) / name.name;
  std::error_code error;
  if (fs::exists(old_shard, error)) {
    // Members of items not redone this time (after `sluice retry`) carry over.
    SLUICE_RETURN_IF_ERROR(
        ReadTar(old_shard.string(), [&](std::string member, std::string data) {
          const std::optional<ItemId> id = ItemOfName(batch, member);
          if (!id.has_value() || redone.contains(*id)) return;
          if (member.ends_with(".json")) kept_metadata->push_back(data);
          texts.push_back(std::move(data));
          members.push_back({*id, {std::move(member), AsBytes(texts.back())}});
        }));
  }
  for (const Record& record : records) {
    if (record.failed()) continue;
    SLUICE_ASSIGN_OR_RETURN(ItemImage image, FindItemImage(record, config_.image_field));
    const std::string key = flavour_->ItemKey(batch, record.id());
    texts.push_back(flavour_->ItemJson(batch, record));
    members.push_back({record.id(), {key + "." + image.ext, image.data}});
    if (image.owned) read_back.push_back(image.owned);  // alive until the tar is written
    members.push_back({record.id(), {key + ".json", AsBytes(texts.back())}});
    if (const std::string* caption = record.FindColumn(kCaptionColumn)) {
      members.push_back({record.id(), {key + ".txt", AsBytes(*caption)}});
    }
  }
  std::stable_sort(members.begin(), members.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<TarMember> ordered;
  ordered.reserve(members.size());
  for (auto& [id, member] : members) ordered.push_back(std::move(member));
  SLUICE_ASSIGN_OR_RETURN(fs::path path, staged.AddExternalFile(DirOf(name), name.name));
  SLUICE_RETURN_IF_ERROR(WriteTar(path.string(), ordered));
  const std::uintmax_t size = fs::file_size(path, error);
  if (!error) *bytes += size;
  return Status::Ok();
}

Result<std::vector<std::pair<ItemId, std::string>>> FileBatchOutput::KeptMetadataLines(
    const FinishedBatch& batch, const std::set<ItemId>& redone) const {
  std::vector<std::pair<ItemId, std::string>> kept;
  const OutputName name = flavour_->Name(OutputFile::kMetadata, batch);
  const fs::path path = DirOf(name) / name.name;
  std::error_code error;
  if (!fs::exists(path, error)) return kept;
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return IoError(
        fmt::format("output: cannot read {}: {}", path.string(), std::strerror(errno)));
  }
  std::size_t number = 0;
  for (std::string line; std::getline(file, line);) {
    ++number;
    const std::optional<ItemId> id = flavour_->ItemOfJson(batch, line);
    if (!id.has_value()) {
      return Corruption(fmt::format(
          "output: {}:{}: not a metadata object (remove the file to rewrite it)",
          path.string(), number));
    }
    if (!redone.contains(*id)) kept.emplace_back(*id, std::move(line));
  }
  if (file.bad()) return IoError(fmt::format("output: cannot read {}", path.string()));
  return kept;
}

namespace {

class StagedBatchFiles final : public StagedBatch {
 public:
  StagedFiles& files() { return files_; }
  Status Publish() override { return files_.Publish(); }

 private:
  StagedFiles files_;
};

}  // namespace

std::uint64_t FileBatchOutput::Hold(BatchId batch, std::span<Record> records) {
  (void)batch;  // what is kept depends on the records only
  std::uint64_t held = 0;
  for (Record& record : records) {
    // Only an ok item's image is written; failed items and the other in-flight
    // fields (a decoded image, the downloaded body when it is not the image) are
    // never needed again.
    const bool keeps_image = !record.failed() && config_.layout != OutputLayout::kNone;
    record.EraseInFlightData(keeps_image ? std::string_view(config_.image_field)
                                         : std::string_view());
    if (!keeps_image) continue;
    if (const Value* value = record.Find(config_.image_field)) {
      if (const Bytes* bytes = std::get_if<Bytes>(value)) held += bytes->size();
    }
  }
  return held;
}

Status FileBatchOutput::Spill(BatchId batch, std::span<Record> records) {
  std::lock_guard lock(spill_mu_);
  auto it = spills_.find(batch);
  if (it == spills_.end()) {
    const fs::path dir = root_ / kSpillDir;
    std::error_code error;
    fs::create_directories(dir, error);
    if (error) {
      return IoError(fmt::format("output: cannot create directory {}: {}", dir.string(),
                                 error.message()));
    }
    SpillFile file;
    file.path = dir / fmt::format(".{}.tmp-{}", BatchName(batch),
                                  WriterTag(OwnerId(), ++spill_counter_));
    file.fd = open(file.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (file.fd < 0) {
      return IoError(fmt::format("output: cannot create {}: {}", file.path.string(),
                                 std::strerror(errno)));
    }
    it = spills_.emplace(batch, std::move(file)).first;
  }
  SpillFile& file = it->second;
  for (Record& record : records) {
    const Value* value = record.Find(config_.image_field);
    const Bytes* bytes = value == nullptr ? nullptr : std::get_if<Bytes>(value);
    if (bytes == nullptr || bytes->empty()) continue;
    std::uint64_t done = 0;
    while (done < bytes->size()) {
      const ssize_t put = write(file.fd, bytes->data() + done, bytes->size() - done);
      if (put < 0 && errno == EINTR) continue;
      if (put <= 0) {
        return IoError(fmt::format("output: cannot write {}: {}", file.path.string(),
                                   std::strerror(put < 0 ? errno : ENOSPC)));
      }
      done += static_cast<std::uint64_t>(put);
    }
    const std::uint64_t size = bytes->size();
    // Replaces (and frees) the bytes.
    record.Set(config_.image_field,
               std::make_shared<const SpilledImage>(file.path, file.size, size));
    file.size += size;
  }
  return Status::Ok();
}

void FileBatchOutput::Discard(BatchId batch) {
  std::lock_guard lock(spill_mu_);
  auto it = spills_.find(batch);
  if (it == spills_.end()) return;
  close(it->second.fd);
  std::error_code error;
  fs::remove(it->second.path, error);  // a leftover otherwise: removed at next start
  spills_.erase(it);
}

FileBatchOutput::~FileBatchOutput() {
  std::lock_guard lock(spill_mu_);
  for (auto& [batch, file] : spills_) {
    close(file.fd);
    std::error_code error;
    fs::remove(file.path, error);
  }
}

Status FileBatchOutput::WriteBatch(const FinishedBatch& batch,
                                   std::span<const Record> records) {
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<StagedBatch> staged,
                          StageBatch(batch, records));
  return staged->Publish();
}

Result<std::unique_ptr<StagedBatch>> FileBatchOutput::StageBatch(
    const FinishedBatch& batch, std::span<const Record> records) {
  SLUICE_RETURN_IF_ERROR(flavour_->CheckBatch(batch));
  // Usually `records` is the whole batch. After `sluice retry` it is only the items
  // retried: the outputs of the others, from the earlier attempt, carry over.
  std::set<ItemId> redone;
  for (const Record& record : records) {
    if (record.id() < batch.first_item ||
        record.id() - batch.first_item >= batch.item_count) {
      return Internal(fmt::format("output: item {} is not in batch {} (items {} to {})",
                                  record.id(), batch.id, batch.first_item,
                                  batch.first_item + batch.item_count - 1));
    }
    redone.insert(record.id());
  }
  auto owned = std::make_unique<StagedBatchFiles>();
  StagedFiles& staged = owned->files();
  std::uint64_t bytes = 0;
  std::vector<std::string> kept_item_metadata;  // from the images, for the stats
  if (config_.layout == OutputLayout::kFiles) {
    SLUICE_RETURN_IF_ERROR(
        StageImageFiles(batch, records, redone, staged, &bytes, &kept_item_metadata));
  } else if (config_.layout == OutputLayout::kWebDataset) {
    SLUICE_RETURN_IF_ERROR(
        StageShard(batch, records, redone, staged, &bytes, &kept_item_metadata));
  }
  std::unique_ptr<BatchStats> stats = flavour_->NewStats();
  if (config_.metadata) {
    SLUICE_ASSIGN_OR_RETURN(auto lines, KeptMetadataLines(batch, redone));
    for (const auto& [id, line] : lines) stats->AddMetadata(line);
    for (const Record& record : records)
      lines.emplace_back(record.id(), flavour_->ItemJson(batch, record));
    std::stable_sort(lines.begin(), lines.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string text;
    for (const auto& [id, line] : lines) {
      text += line;
      text += '\n';
    }
    const OutputName name = flavour_->Name(OutputFile::kMetadata, batch);
    SLUICE_RETURN_IF_ERROR(staged.AddFile(DirOf(name), name.name, text));
    bytes += text.size();
  } else {
    // Without metadata, what is known of items not redone is their ok images' JSON.
    for (const std::string& json : kept_item_metadata) stats->AddMetadata(json);
  }
  if (config_.stats) {
    for (const Record& record : records) stats->Add(record);
    stats->AddBytesWritten(bytes);
    const OutputName name = flavour_->Name(OutputFile::kStats, batch);
    SLUICE_RETURN_IF_ERROR(staged.AddFile(DirOf(name), name.name, stats->ToJson(batch)));
  }
  SLUICE_RETURN_IF_ERROR(staged.Sync());
  Discard(batch.id);  // what was spilled is in the staged files now
  return std::unique_ptr<StagedBatch>(std::move(owned));
}

}  // namespace sluice
