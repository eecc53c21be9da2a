// Records to bytes and back: how a batch's records travel from one stage group to
// the next (a pipeline split by function, docs/cluster.md). Group A's worker encodes
// the records of a batch as they leave its last stage (failed ones too, with their
// reason), writes them to the blob store, and commits; group B's worker decodes them
// and goes on with its first stage, as if the two groups were one chain.
//
// Everything a record holds travels: id, url, input columns, failure, and every
// field in order, Payload values through their codec (Payload::codec(), decoded by
// the StageRegistry's decoder of that name). The encoding is a versioned binary
// layout compressed as one zstd frame with its content checksum, so that a torn or
// damaged blob is found (kCorruption), never half-read.
#ifndef SLUICE_CORE_RECORD_CODEC_H_
#define SLUICE_CORE_RECORD_CODEC_H_

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

}  // namespace sluice

#endif  // SLUICE_CORE_RECORD_CODEC_H_
