// The stage a worker puts after the last stage of a group that another group
// follows (src/core/worker.h, "Stage groups"): it encodes each record for the blob
// store (src/core/record_codec.h) where the work can run in parallel, on the pool's
// threads, and drops what the record carried, so that the collector thread only
// appends finished bytes to the batch's payload, and a record waiting there for its
// batch holds its compressed encoding, not its pixels.
#ifndef SLUICE_CORE_PAYLOAD_PACK_H_
#define SLUICE_CORE_PAYLOAD_PACK_H_

#include <optional>
#include <span>
#include <string>

#include "sluice/record.h"
#include "sluice/stage.h"

namespace sluice {

// The stage's name in counters and `sluice status`.
inline constexpr char kPayloadPackStage[] = "pack";

class PayloadPackStage final : public CpuStage {
 public:
  // Every record, failed ones too (the next group needs them all). A record that
  // cannot be encoded (a field without a codec) is left as it is: the worker
  // encodes it again when it writes the payload, and fails the batch with the error.
  void Process(std::span<Record> records) override;
};

// The encoding PayloadPackStage left in `record`, taken out of it; nullopt when the
// record holds none.
std::optional<std::string> TakePackedRecord(Record& record);

}  // namespace sluice

#endif  // SLUICE_CORE_PAYLOAD_PACK_H_
