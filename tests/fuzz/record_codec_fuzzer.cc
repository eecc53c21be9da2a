// Fuzzes the record codec (src/core/record_codec.h) on what a stage group reads from
// the blob store, which may come from a shared filesystem: any bytes at all. The
// first input byte sets the size of the pieces RecordStream is fed (1 to 256 bytes),
// the rest is the encoding. Payloads of the image codec (src/stages/image.h) are
// decoded too.
//
// Checked:
//   - neither DecodeRecords nor RecordStream crashes, hangs or reads out of bounds;
//   - they agree: the stream reads to its end without an error exactly when
//     DecodeRecords accepts the bytes, and then gives the same records in order;
//   - what they accept is stable: encoding the records again and decoding that
//     gives the same encoding once more.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/record_codec.h"
#include "src/stages/image.h"
#include "tests/fuzz/fuzz_check.h"

namespace sluice {
namespace {

const StageRegistry& Decoders() {
  static const StageRegistry* registry = [] {
    auto* made = new StageRegistry();
    if (!made->RegisterPayloadDecoder(ImagePayload::kCodec, &DecodeImagePayload).ok()) {
      std::abort();  // a fresh registry has no decoder yet
    }
    return made;
  }();
  return *registry;
}

}  // namespace
}  // namespace sluice

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  if (size < 1) return 0;
  const std::size_t piece = std::size_t{data[0]} + 1;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);

  Result<std::vector<Record>> whole = DecodeRecords(bytes, Decoders());

  std::size_t at = 0;
  RecordStream stream(
      [&](char* into, std::size_t room) -> Result<std::size_t> {
        const std::size_t n = std::min({room, piece, bytes.size() - at});
        std::memcpy(into, bytes.data() + at, n);
        at += n;
        return n;
      },
      Decoders());
  std::vector<Record> streamed;
  bool stream_ok = true;
  for (;;) {
    Result<std::optional<Record>> next = stream.Next();
    if (!next.ok()) {
      stream_ok = false;
      break;
    }
    if (!next->has_value()) break;
    streamed.push_back(std::move(**next));
  }
  SLUICE_FUZZ_CHECK(stream_ok == whole.ok());
  if (!whole.ok()) return 0;
  SLUICE_FUZZ_CHECK(streamed.size() == whole->size());
  for (std::size_t i = 0; i < streamed.size(); ++i) {
    SLUICE_FUZZ_CHECK(streamed[i].id() == (*whole)[i].id());
    SLUICE_FUZZ_CHECK(streamed[i].fields().size() == (*whole)[i].fields().size());
  }

  Result<std::string> again = EncodeRecords(*whole);
  SLUICE_FUZZ_CHECK(again.ok());
  Result<std::vector<Record>> back = DecodeRecords(*again, Decoders());
  SLUICE_FUZZ_CHECK(back.ok() && back->size() == whole->size());
  Result<std::string> third = EncodeRecords(*back);
  SLUICE_FUZZ_CHECK(third.ok() && *third == *again);
  return 0;
}
