#include "src/output/file_batch_output.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "src/output/batch_metadata.h"
#include "src/output/staged_files.h"
#include "src/output/tar_shard.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

constexpr char kImagesDir[] = "images";
constexpr char kShardsDir[] = "shards";
constexpr char kMetadataDir[] = "metadata";
constexpr char kStatsDir[] = "stats";
constexpr char kCaptionColumn[] = "caption";

// What an ok item saves: its image bytes and their extension.
struct ItemImage {
  const Bytes* bytes = nullptr;
  std::string ext;
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
    return ItemImage{bytes, *ext_field};
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
  return ItemImage{bytes, std::move(ext)};
}

// The item id a file or member name starts with ("0000000042.jpg" -> 42), or nullopt
// for names that are not an item's.
std::optional<ItemId> KeyOfName(std::string_view name) {
  const std::size_t dot = name.find('.');
  if (dot == 0 || dot == std::string_view::npos) return std::nullopt;
  ItemId id = 0;
  auto [end, error] = std::from_chars(name.data(), name.data() + dot, id);
  if (error != std::errc() || end != name.data() + dot) return std::nullopt;
  return id;
}

std::string Slurp(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

std::string_view AsText(const Bytes& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace

FileBatchOutput::FileBatchOutput(OutputConfig config, fs::path root)
    : config_(std::move(config)), root_(std::move(root)) {}

std::string FileBatchOutput::BatchName(BatchId batch) {
  return fmt::format("{:08}", batch);
}

std::string FileBatchOutput::ItemKey(ItemId item) { return fmt::format("{:010}", item); }

Status FileBatchOutput::Prepare() {
  std::error_code error;
  fs::create_directories(root_, error);
  if (error) {
    return IoError(fmt::format("output: cannot create directory {}: {}", root_.string(),
                               error.message()));
  }
  leftovers_ = LeftoverCount{};
  for (const char* dir : {kImagesDir, kShardsDir, kMetadataDir, kStatsDir}) {
    SLUICE_ASSIGN_OR_RETURN(LeftoverCount found, RemoveLeftovers(root_ / dir));
    leftovers_.removed += found.removed;
    leftovers_.kept_live += found.kept_live;
    leftovers_.kept_other_hosts += found.kept_other_hosts;
    if (found.kept_other_hosts > 0) {
      fmt::print(stderr,
                 "sluice: output: kept {} temporary name(s) of writers on other hosts "
                 "in {} (this host cannot tell whether they still run): remove them "
                 "once those writers are gone\n",
                 found.kept_other_hosts, (root_ / dir).string());
    }
  }
  return Status::Ok();
}

Status FileBatchOutput::StageImageFiles(BatchId batch, std::span<const Record> records,
                                        const std::set<ItemId>& redone,
                                        StagedFiles& staged, std::uint64_t* bytes,
                                        std::vector<std::string>* kept_metadata) const {
  const std::string name = BatchName(batch);
  const fs::path old_dir = root_ / kImagesDir / name;
  SLUICE_ASSIGN_OR_RETURN(fs::path dir, staged.AddDirectory(root_ / kImagesDir, name));
  // Files of items not redone this time (after `sluice retry`) carry over: linked,
  // not copied.
  std::error_code error;
  if (fs::is_directory(old_dir, error)) {
    for (fs::directory_iterator it(old_dir, error), end; !error && it != end;
         it.increment(error)) {
      const std::string file = it->path().filename().string();
      const std::optional<ItemId> id = KeyOfName(file);
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
    const std::string key = ItemKey(record.id());
    const std::string metadata = ItemMetadataJson(record);
    SLUICE_RETURN_IF_ERROR(
        WritePlainFile(dir / (key + "." + image.ext), AsText(*image.bytes)));
    SLUICE_RETURN_IF_ERROR(WritePlainFile(dir / (key + ".json"), metadata));
    *bytes += image.bytes->size() + metadata.size();
    if (const std::string* caption = record.FindColumn(kCaptionColumn)) {
      SLUICE_RETURN_IF_ERROR(WritePlainFile(dir / (key + ".txt"), *caption));
      *bytes += caption->size();
    }
  }
  return Status::Ok();
}

Status FileBatchOutput::StageShard(BatchId batch, std::span<const Record> records,
                                   const std::set<ItemId>& redone, StagedFiles& staged,
                                   std::uint64_t* bytes,
                                   std::vector<std::string>* kept_metadata) const {
  const std::string name = BatchName(batch);
  // Members by item id; each item's members in the order written. They reference
  // the records' bytes and the texts kept here.
  std::deque<std::string> texts;
  std::vector<std::pair<ItemId, TarMember>> members;
  const fs::path old_shard = root_ / kShardsDir / (name + ".tar");
  std::error_code error;
  if (fs::exists(old_shard, error)) {
    // Members of items not redone this time (after `sluice retry`) carry over.
    SLUICE_RETURN_IF_ERROR(
        ReadTar(old_shard.string(), [&](std::string member, std::string data) {
          const std::optional<ItemId> id = KeyOfName(member);
          if (!id.has_value() || redone.contains(*id)) return;
          if (member.ends_with(".json")) kept_metadata->push_back(data);
          texts.push_back(std::move(data));
          members.push_back({*id, {std::move(member), AsBytes(texts.back())}});
        }));
  }
  for (const Record& record : records) {
    if (record.failed()) continue;
    SLUICE_ASSIGN_OR_RETURN(ItemImage image, FindItemImage(record, config_.image_field));
    const std::string key = ItemKey(record.id());
    texts.push_back(ItemMetadataJson(record));
    members.push_back({record.id(), {key + "." + image.ext, *image.bytes}});
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
  SLUICE_ASSIGN_OR_RETURN(fs::path path,
                          staged.AddExternalFile(root_ / kShardsDir, name + ".tar"));
  SLUICE_RETURN_IF_ERROR(WriteTar(path.string(), ordered));
  const std::uintmax_t size = fs::file_size(path, error);
  if (!error) *bytes += size;
  return Status::Ok();
}

Result<std::vector<std::pair<ItemId, std::string>>> FileBatchOutput::KeptMetadataLines(
    BatchId batch, const std::set<ItemId>& redone) const {
  std::vector<std::pair<ItemId, std::string>> kept;
  const fs::path path = root_ / kMetadataDir / (BatchName(batch) + ".jsonl");
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
    const std::optional<ItemId> id = MetadataItemId(line);
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

Status FileBatchOutput::WriteBatch(BatchId batch, std::span<const Record> records) {
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<StagedBatch> staged,
                          StageBatch(batch, records));
  return staged->Publish();
}

Result<std::unique_ptr<StagedBatch>> FileBatchOutput::StageBatch(
    BatchId batch, std::span<const Record> records) {
  // Usually `records` is the whole batch. After `sluice retry` it is only the items
  // retried: the outputs of the others, from the earlier attempt, carry over.
  std::set<ItemId> redone;
  for (const Record& record : records) redone.insert(record.id());
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
  const std::string name = BatchName(batch);
  BatchStats stats;
  if (config_.metadata) {
    SLUICE_ASSIGN_OR_RETURN(auto lines, KeptMetadataLines(batch, redone));
    for (const auto& [id, line] : lines) stats.AddMetadata(line);
    for (const Record& record : records)
      lines.emplace_back(record.id(), ItemMetadataJson(record));
    std::stable_sort(lines.begin(), lines.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string text;
    for (const auto& [id, line] : lines) {
      text += line;
      text += '\n';
    }
    SLUICE_RETURN_IF_ERROR(staged.AddFile(root_ / kMetadataDir, name + ".jsonl", text));
    bytes += text.size();
  } else {
    // Without metadata, what is known of items not redone is their ok images' JSON.
    for (const std::string& json : kept_item_metadata) stats.AddMetadata(json);
  }
  if (config_.stats) {
    for (const Record& record : records) stats.Add(record);
    stats.AddBytesWritten(bytes);
    SLUICE_RETURN_IF_ERROR(
        staged.AddFile(root_ / kStatsDir, name + ".json", stats.ToJson(batch)));
  }
  SLUICE_RETURN_IF_ERROR(staged.Sync());
  return std::unique_ptr<StagedBatch>(std::move(owned));
}

}  // namespace sluice
