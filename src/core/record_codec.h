// Records to bytes and back: how a batch's records travel from one stage group to
// the next (a pipeline split by function, docs/cluster.md). Group A's worker encodes
// the records of a batch as they leave its last stage (failed ones too, with their
// reason), writes them to the blob store, and commits; group B's worker decodes them
// and goes on with its first stage, as if the two groups were one chain.
//
// Everything a record holds travels: id, url, input columns, failure, and every
// field in order, Payload values through their codec (Payload::codec(), decoded by
// the StageRegistry's decoder of that name). The encoding is a versioned binary
// layout compressed as zstd frames of about 1 MiB of records each (at least one
// record), each with its content checksum, so that a torn or damaged blob is found
// (kCorruption), never half-read.
#ifndef SLUICE_CORE_RECORD_CODEC_H_
#define SLUICE_CORE_RECORD_CODEC_H_

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/record.h"
#include "sluice/stage.h"
#include "sluice/status.h"

namespace sluice {

// The encoded records. InvalidArgument, naming the record and field, when a field
// holds a Payload without a codec (it cannot leave the process).
Result<std::string> EncodeRecords(std::span<const Record> records);

// The records EncodeRecords wrote, in the same order; `bytes` may be several
// encodings one after the other (their records in turn). Corruption when they are not
// such an encoding (truncated, damaged, another version), or a payload's codec is
// unknown to `registry`.
Result<std::vector<Record>> DecodeRecords(std::string_view bytes,
                                          const StageRegistry& registry);

// Reads an encoding of records frame by frame, for a consumer that takes one record
// at a time (a batch read from the blob store as the stages take it): what is in
// memory is one frame and its records (about 1 MiB, or one bigger record), never
// the whole encoding.
class RecordStream {
 public:
  // Fills up to `size` bytes of `into`; 0 at the end of the encoding.
  using ReadBytes = std::function<Result<std::size_t>(char* into, std::size_t size)>;

  RecordStream(ReadBytes read, const StageRegistry& registry)
      : read_(std::move(read)), registry_(registry) {}

  // The next record; nullopt after the last. Corruption as DecodeRecords; an error of
  // `read` as it came. After an error, the stream is not to be read on.
  Result<std::optional<Record>> Next();

 private:
  // Decodes the next frame into ready_; false at the end of the encoding.
  Result<bool> ReadFrame();

  ReadBytes read_;
  const StageRegistry& registry_;
  std::string buffer_;        // bytes read and not decoded yet, from start_ on
  std::size_t start_ = 0;
  bool at_end_ = false;       // read_ said there is no more
  bool any_frame_ = false;
  std::vector<Record> ready_;  // the frame's records, handed out from next_ on
  std::size_t next_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_CORE_RECORD_CODEC_H_
