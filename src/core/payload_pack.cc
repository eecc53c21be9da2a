#include "src/core/payload_pack.h"

#include <memory>
#include <utility>

#include "src/core/record_codec.h"

namespace sluice {
namespace {

// Where the encoding waits in the record. A Payload without a codec: if it ever
// reached EncodeRecords (a bug), that would refuse it, not write it.
constexpr char kPackedField[] = "sluice.packed_record";

class PackedRecord final : public Payload {
 public:
  explicit PackedRecord(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string Describe() const override { return "a record encoded for the next group"; }
  std::string Take() const { return std::move(bytes_); }

 private:
  mutable std::string bytes_;  // moved out once, by TakePackedRecord
};

}  // namespace

void PayloadPackStage::Process(std::span<Record> records) {
  for (Record& record : records) {
    Result<std::string> encoded = EncodeRecords(std::span<const Record>(&record, 1));
    if (!encoded.ok()) continue;
    record.EraseInFlightData();
    record.Set(kPackedField, std::shared_ptr<const Payload>(
                                 std::make_shared<PackedRecord>(std::move(encoded).value())));
  }
}

std::optional<std::string> TakePackedRecord(Record& record) {
  const Value* value = record.Find(kPackedField);
  if (value == nullptr) return std::nullopt;
  const auto* payload = std::get_if<std::shared_ptr<const Payload>>(value);
  const auto* packed =
      payload == nullptr ? nullptr : dynamic_cast<const PackedRecord*>(payload->get());
  std::optional<std::string> bytes;
  if (packed != nullptr) bytes = packed->Take();
  record.Erase(kPackedField);
  return bytes;
}

}  // namespace sluice
