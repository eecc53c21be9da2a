// The blob store: where a stage group leaves each batch's records for the next group
// (a pipeline split by function, docs/cluster.md).
//
// Names are relative paths of the form GROUP/BATCH.tTOKEN, made by PayloadName():
// each lease writes under a name of its own, so a late writer (a worker whose lease
// was taken over) can never replace the payload a commit made valid; the next group
// reads the name the committed token gives (Store::CommittedToken), and removes every
// payload of the batch once it has committed itself.
//
// First backend: a directory, local or on a filesystem every worker mounts (NFS,
// CephFS, a cloud file share). Put() writes a temporary file, fsyncs it, renames it
// into place and fsyncs the directory: a payload is whole or absent, and durable
// before the commit that names it.
//
// Thread-safety: all methods may be called from any thread, and by many processes on
// the same directory.
#ifndef SLUICE_CORE_BLOB_STORE_H_
#define SLUICE_CORE_BLOB_STORE_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/record.h"
#include "sluice/status.h"

namespace sluice {

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  // A blob written in pieces, as they come (a batch's records as they finish):
  // nothing shows under its name until Commit() succeeds, which makes it whole and
  // durable; destroyed without that, what was written is removed.
  class Writer {
   public:
    virtual ~Writer() = default;
    virtual Status Append(std::string_view bytes) = 0;
    // REQUIRES: called once; Append() is refused afterwards.
    virtual Status Commit() = 0;
  };
  // Starts writing `name` (a name is written once: Commit() replaces nothing it
  // should not, because every name carries its writer's lease token).
  virtual Result<std::unique_ptr<Writer>> StartPut(std::string_view name) = 0;

  // Stores `bytes` under `name` in one go.
  Status Put(std::string_view name, std::string_view bytes);

  // A blob read in pieces, as they are needed (a batch's records as the stages take
  // them), so that a big blob is never in memory whole.
  class Reader {
   public:
    virtual ~Reader() = default;
    // Up to `size` bytes into `into`; 0 at the end of the blob.
    virtual Result<std::size_t> Read(char* into, std::size_t size) = 0;
  };
  // Opens `name` for reading; NotFound when there is no such blob.
  virtual Result<std::unique_ptr<Reader>> OpenRead(std::string_view name) = 0;
  // The bytes under `name`; NotFound when there are none.
  Result<std::string> Get(std::string_view name);
  // Removes `name`; Ok if it is not there.
  virtual Status Remove(std::string_view name) = 0;
  // The names starting with `prefix`, sorted.
  virtual Result<std::vector<std::string>> List(std::string_view prefix) = 0;
  // Where the blobs are, for messages ("blobs /mnt/shared/blobs").
  virtual std::string Describe() const = 0;
  // Removes what writers that never committed left under `prefix` (a process that
  // died mid-blob) when untouched for `age`; returns how many. Writers still at work
  // touch theirs with every Append().
  virtual Result<std::uint64_t> RemoveAbandoned(std::string_view prefix,
                                                std::chrono::seconds age) = 0;
};

// A blob store in `dir` (created if missing).
Result<std::unique_ptr<BlobStore>> OpenDirectoryBlobStore(
    const std::filesystem::path& dir);

// "GROUP/BATCH.tTOKEN": the payload group `group` leaves for the next group, written
// under the lease with `token`. Batch ids are zero-padded so that names sort by batch.
std::string PayloadName(std::string_view group, BatchId batch, std::uint64_t token);
// "GROUP/BATCH.t": the prefix of every payload of the batch.
std::string PayloadPrefix(std::string_view group, BatchId batch);

// What PayloadName() wrote, from a name; nullopt for any other name.
struct PayloadKey {
  std::string group;
  BatchId batch = 0;
  std::uint64_t token = 0;
};
std::optional<PayloadKey> ParsePayloadName(std::string_view name);

}  // namespace sluice

#endif  // SLUICE_CORE_BLOB_STORE_H_
