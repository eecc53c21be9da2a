// Fingerprints: recognising an input file by its content.
//
// A fingerprint is the file's size and a digest of its edges: XXH64 (seed 0) of the
// size as 8 little-endian bytes, followed by the whole file when it is at most
// 2 * kFingerprintEdgeBytes long, else by its first and its last kFingerprintEdgeBytes
// bytes; written as 16 lowercase hex digits. Reading 128 KiB makes fingerprinting
// instant at any size, and catches what happens to input files in practice: a file
// renamed or copied (same fingerprint: ingested once), appended to or truncated (new
// size), regenerated (new head or tail). Two files of equal size that differ only
// in the middle would be taken for one another; that is the price of not reading
// billions of lines twice.
//
// The digest is stored with each input; changing this function makes every input
// look new, so it is fixed.
//
// Thread-safe (pure functions, pread on a file).
#ifndef SLUICE_INPUT_FINGERPRINT_H_
#define SLUICE_INPUT_FINGERPRINT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sluice/status.h"
#include "sluice/store.h"
#include "src/input/byte_source.h"

namespace sluice {

inline constexpr std::size_t kFingerprintEdgeBytes = std::size_t{64} << 10;

// XXH64 of `data` (Yann Collet's xxHash, 64-bit variant), bit for bit.
std::uint64_t XxHash64(std::string_view data, std::uint64_t seed = 0);

// Returns the fingerprint of `file`, which was opened from `path` (kept for messages).
Result<InputFingerprint> FingerprintFile(const FileSource& file, const std::string& path);

}  // namespace sluice

#endif  // SLUICE_INPUT_FINGERPRINT_H_
