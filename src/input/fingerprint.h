// Fingerprints: recognising an input file by its content.
//
// A fingerprint is the file's size and XXH64 (seed 0, libxxhash) of the size as 8
// little-endian bytes followed by the whole file, written as 16 lowercase hex digits.
// The same content under another name is the same input (ingested once); any changed
// byte makes a new input. Hashing runs at memory speed, so the cost is one extra read
// of the file, usually served by the page cache ingest then reads from.
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


// XXH64 of `data` (libxxhash).
std::uint64_t XxHash64(std::string_view data, std::uint64_t seed = 0);

// Returns the fingerprint of `file`, which was opened from `path` (kept for messages).
Result<InputFingerprint> FingerprintFile(const FileSource& file, const std::string& path);

}  // namespace sluice

#endif  // SLUICE_INPUT_FINGERPRINT_H_
