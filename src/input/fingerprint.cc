#include "src/input/fingerprint.h"

#include <fmt/format.h>

#include <bit>
#include <cstring>
#include <span>

namespace sluice {
namespace {

constexpr std::uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
constexpr std::uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
constexpr std::uint64_t kPrime3 = 0x165667B19E3779F9ULL;
constexpr std::uint64_t kPrime4 = 0x85EBCA77C2B2AE63ULL;
constexpr std::uint64_t kPrime5 = 0x27D4EB2F165667C5ULL;

// xxHash reads its input as little-endian words, whatever the machine.
std::uint64_t Load64(const char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

std::uint32_t Load32(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
  return v;
}

std::uint64_t Round(std::uint64_t acc, std::uint64_t input) {
  acc += input * kPrime2;
  acc = std::rotl(acc, 31);
  return acc * kPrime1;
}

std::uint64_t MergeRound(std::uint64_t acc, std::uint64_t value) {
  acc ^= Round(0, value);
  return acc * kPrime1 + kPrime4;
}

}  // namespace

std::uint64_t XxHash64(std::string_view data, std::uint64_t seed) {
  const char* p = data.data();
  const char* const end = p + data.size();
  std::uint64_t h;
  if (data.size() >= 32) {
    std::uint64_t v1 = seed + kPrime1 + kPrime2;
    std::uint64_t v2 = seed + kPrime2;
    std::uint64_t v3 = seed;
    std::uint64_t v4 = seed - kPrime1;
    while (end - p >= 32) {
      v1 = Round(v1, Load64(p));
      v2 = Round(v2, Load64(p + 8));
      v3 = Round(v3, Load64(p + 16));
      v4 = Round(v4, Load64(p + 24));
      p += 32;
    }
    h = std::rotl(v1, 1) + std::rotl(v2, 7) + std::rotl(v3, 12) + std::rotl(v4, 18);
    h = MergeRound(h, v1);
    h = MergeRound(h, v2);
    h = MergeRound(h, v3);
    h = MergeRound(h, v4);
  } else {
    h = seed + kPrime5;
  }
  h += static_cast<std::uint64_t>(data.size());
  while (end - p >= 8) {
    h ^= Round(0, Load64(p));
    h = std::rotl(h, 27) * kPrime1 + kPrime4;
    p += 8;
  }
  if (end - p >= 4) {
    h ^= static_cast<std::uint64_t>(Load32(p)) * kPrime1;
    h = std::rotl(h, 23) * kPrime2 + kPrime3;
    p += 4;
  }
  while (p < end) {
    h ^= static_cast<std::uint64_t>(static_cast<unsigned char>(*p)) * kPrime5;
    h = std::rotl(h, 11) * kPrime1;
    ++p;
  }
  h ^= h >> 33;
  h *= kPrime2;
  h ^= h >> 29;
  h *= kPrime3;
  h ^= h >> 32;
  return h;
}

Result<InputFingerprint> FingerprintFile(const FileSource& file,
                                         const std::string& path) {
  const std::uint64_t size = file.size();
  std::string sample(8, '\0');
  for (int i = 0; i < 8; ++i) sample[i] = static_cast<char>((size >> (8 * i)) & 0xff);
  if (size <= 2 * kFingerprintEdgeBytes) {
    sample.resize(8 + size);
    SLUICE_RETURN_IF_ERROR(file.ReadAt(0, std::span<char>(sample.data() + 8, size)));
  } else {
    sample.resize(8 + 2 * kFingerprintEdgeBytes);
    SLUICE_RETURN_IF_ERROR(
        file.ReadAt(0, std::span<char>(sample.data() + 8, kFingerprintEdgeBytes)));
    SLUICE_RETURN_IF_ERROR(
        file.ReadAt(size - kFingerprintEdgeBytes,
                    std::span<char>(sample.data() + 8 + kFingerprintEdgeBytes,
                                    kFingerprintEdgeBytes)));
  }
  InputFingerprint fingerprint;
  fingerprint.path = path;
  fingerprint.size = size;
  fingerprint.digest = fmt::format("{:016x}", XxHash64(sample));
  return fingerprint;
}

}  // namespace sluice
