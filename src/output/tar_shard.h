// Writing and reading tar files (WebDataset shards) with libarchive.
//
// The format is POSIX ustar, extended with pax headers only for a member that needs
// them (libarchive's "pax restricted"), which every tar reader and the webdataset
// Python package read. Members are regular files, mode 0644, owned by uid/gid 0,
// stamped with the time of writing, in the order given.
//
// Thread-safety: the function is thread-safe (no shared state).
#ifndef SLUICE_OUTPUT_TAR_SHARD_H_
#define SLUICE_OUTPUT_TAR_SHARD_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "sluice/status.h"

namespace sluice {

struct TarMember {
  std::string name;                    // path inside the archive, e.g. "0000000007.jpg"
  std::span<const std::uint8_t> data;  // the member's bytes, owned by the caller
};

// Writes `members` to a new tar file at `path` (created or truncated), not synced.
// Returns an error naming the path and member on failure.
Status WriteTar(const std::string& path, std::span<const TarMember> members);

// Calls `member(name, data)` for every regular file in the tar file at `path`, in
// order. Returns an error naming the path if it cannot be read as a tar.
Status ReadTar(const std::string& path,
               const std::function<void(std::string name, std::string data)>& member);

// `text` as the bytes of a TarMember (a view; `text` must outlive it).
inline std::span<const std::uint8_t> AsBytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

}  // namespace sluice

#endif  // SLUICE_OUTPUT_TAR_SHARD_H_
