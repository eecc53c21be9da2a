#include "src/input/fingerprint.h"

#include <fmt/format.h>

#include <xxhash.h>

#include <algorithm>
#include <memory>
#include <span>

namespace sluice {
namespace {

constexpr std::size_t kReadBlockBytes = std::size_t{1} << 20;

struct StateDeleter {
  void operator()(XXH64_state_t* state) const { XXH64_freeState(state); }
};

}  // namespace

std::uint64_t XxHash64(std::string_view data, std::uint64_t seed) {
  return XXH64(data.data(), data.size(), seed);
}

Result<InputFingerprint> FingerprintFile(const FileSource& file, const std::string& path) {
  const std::uint64_t size = file.size();
  std::unique_ptr<XXH64_state_t, StateDeleter> state(XXH64_createState());
  if (state == nullptr || XXH64_reset(state.get(), 0) == XXH_ERROR) {
    return Internal(fmt::format("input {}: cannot start a hash", path));
  }
  char size_bytes[8];
  for (int i = 0; i < 8; ++i) size_bytes[i] = static_cast<char>((size >> (8 * i)) & 0xff);
  XXH64_update(state.get(), size_bytes, sizeof(size_bytes));
  std::string block(static_cast<std::size_t>(std::min<std::uint64_t>(size, kReadBlockBytes)),
                    '\0');
  for (std::uint64_t offset = 0; offset < size;) {
    const std::size_t length =
        static_cast<std::size_t>(std::min<std::uint64_t>(size - offset, block.size()));
    SLUICE_RETURN_IF_ERROR(file.ReadAt(offset, std::span<char>(block.data(), length)));
    XXH64_update(state.get(), block.data(), length);
    offset += length;
  }
  InputFingerprint fingerprint;
  fingerprint.path = path;
  fingerprint.size = size;
  fingerprint.digest = fmt::format("{:016x}", XXH64_digest(state.get()));
  return fingerprint;
}

}  // namespace sluice
