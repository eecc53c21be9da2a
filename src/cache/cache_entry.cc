#include "src/cache/cache_entry.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <bit>
#include <cstdint>
#include <cstring>

namespace sluice {
namespace {

constexpr char kMagic[4] = {'S', 'L', 'C', 'E'};
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kChecksumEnd = 16;  // magic, version, checksum

static_assert(std::endian::native == std::endian::little,
              "cache entries are written in the machine's byte order");

template <typename T>
void Append(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

void AppendText(std::string& out, std::string_view text) {
  Append(out, static_cast<std::uint32_t>(text.size()));
  out.append(text);
}

// Reads fields front to back; any read past the end sets `truncated`.
class EntryReader {
 public:
  explicit EntryReader(std::string_view bytes) : rest_(bytes) {}

  template <typename T>
  T Read() {
    T value{};
    if (rest_.size() < sizeof(T)) {
      truncated_ = true;
      rest_ = {};
      return value;
    }
    std::memcpy(&value, rest_.data(), sizeof(T));
    rest_.remove_prefix(sizeof(T));
    return value;
  }

  std::string_view ReadBytes(std::uint64_t size) {
    if (rest_.size() < size) {
      truncated_ = true;
      rest_ = {};
      return {};
    }
    std::string_view bytes = rest_.substr(0, static_cast<std::size_t>(size));
    rest_.remove_prefix(static_cast<std::size_t>(size));
    return bytes;
  }

  std::string_view ReadText() { return ReadBytes(Read<std::uint32_t>()); }

  bool truncated() const { return truncated_; }
  std::size_t left() const { return rest_.size(); }

 private:
  std::string_view rest_;
  bool truncated_ = false;
};

}  // namespace

std::string CacheKey(std::string_view url) {
  const XXH128_hash_t hash = XXH3_128bits(url.data(), url.size());
  return fmt::format("{:016x}{:016x}", hash.high64, hash.low64);
}

std::string EncodeCacheEntry(std::string_view url, const CachedResponse& response) {
  std::string out;
  out.reserve(kChecksumEnd + 8 + 12 + url.size() + response.content_type.size() +
              response.final_url.size() + 8 + response.body.size());
  out.append(kMagic, sizeof kMagic);
  Append(out, kVersion);
  Append(out, std::uint64_t{0});  // the checksum, below
  Append(out, response.http_status);
  AppendText(out, url);
  AppendText(out, response.content_type);
  AppendText(out, response.final_url);
  Append(out, static_cast<std::uint64_t>(response.body.size()));
  out.append(reinterpret_cast<const char*>(response.body.data()), response.body.size());
  const std::uint64_t checksum =
      XXH3_64bits(out.data() + kChecksumEnd, out.size() - kChecksumEnd);
  std::memcpy(out.data() + 8, &checksum, sizeof checksum);
  return out;
}

Result<CachedResponse> DecodeCacheEntry(std::string_view url, std::string_view entry) {
  if (entry.size() < kChecksumEnd ||
      std::memcmp(entry.data(), kMagic, sizeof kMagic) != 0) {
    return Corruption(
        fmt::format("cache entry of {} bytes without its header", entry.size()));
  }
  EntryReader reader(entry.substr(sizeof kMagic));
  const auto version = reader.Read<std::uint32_t>();
  if (version != kVersion) {
    return Corruption(
        fmt::format("cache entry of version {}, not {}", version, kVersion));
  }
  const auto checksum = reader.Read<std::uint64_t>();
  if (checksum != XXH3_64bits(entry.data() + kChecksumEnd, entry.size() - kChecksumEnd)) {
    return Corruption("cache entry checksum mismatch (truncated or damaged)");
  }
  CachedResponse response;
  response.http_status = reader.Read<std::int64_t>();
  const std::string_view stored_url = reader.ReadText();
  response.content_type = std::string(reader.ReadText());
  response.final_url = std::string(reader.ReadText());
  const std::string_view body = reader.ReadBytes(reader.Read<std::uint64_t>());
  if (reader.truncated() || reader.left() != 0) {
    return Corruption("cache entry fields do not add up to its size");
  }
  if (stored_url != url) return NotFound("cache entry holds another URL");
  response.body.assign(body.begin(), body.end());
  return response;
}

}  // namespace sluice
