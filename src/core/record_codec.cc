#include "src/core/record_codec.h"

#include <fmt/format.h>
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <memory>

namespace sluice {
namespace {

// The layout, before compression (integers little-endian, strings as u32 length
// then bytes):
//   "SLRC" u32 version u32 record_count, then per record:
//   u64 id, str url, u32 column_count (str name, str text)..., u8 reason, str error,
//   u32 field_count (str name, u8 tag, value)...
// Tags: 0 unset, 1 bool (u8), 2 int64 (u64), 3 double (u64 bits), 4 text (str),
// 5 bytes (str), 6 payload (str codec, str encoded), 7 JSON text (str).
constexpr char kMagic[4] = {'S', 'L', 'R', 'C'};
constexpr std::uint32_t kVersion = 1;
// A fast zstd level: the blob is written once and read once, soon after, and what
// travels is mostly pixels, which compress little; the frame's checksum is the point.
constexpr int kLevel = -5;
// A frame ends after the record that takes it past this many bytes: a batch of big
// records (images) never sits in memory whole, uncompressed, and small records still
// share frames, and what zstd finds common between them.
constexpr std::size_t kFrameBytes = std::size_t{1} << 20;
// The most a frame may hold (one record at least): what a reader allocates for a
// frame at most, so that a damaged one cannot ask for more. The writer refuses a
// bigger record.
constexpr std::size_t kMaxFrameBytes = std::size_t{256} << 20;

enum Tag : std::uint8_t { kUnset, kBool, kInt, kDouble, kText, kBytes, kPayload, kJson };

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void U8(std::uint8_t value) { out_.push_back(static_cast<char>(value)); }
  void U32(std::uint32_t value) {
    for (int i = 0; i < 4; ++i) U8(static_cast<std::uint8_t>(value >> (8 * i)));
  }
  void U64(std::uint64_t value) {
    for (int i = 0; i < 8; ++i) U8(static_cast<std::uint8_t>(value >> (8 * i)));
  }
  void Str(std::string_view text) {
    U32(static_cast<std::uint32_t>(text.size()));
    out_.append(text);
  }
  // A string that `append(out)` writes in place, its length put before it after.
  template <typename Append>
  void StrInPlace(Append append) {
    const std::size_t at = out_.size();
    U32(0);
    append(out_);
    const auto size = static_cast<std::uint32_t>(out_.size() - at - 4);
    for (int i = 0; i < 4; ++i) out_[at + i] = static_cast<char>(size >> (8 * i));
  }
  std::size_t size() const { return out_.size(); }

 private:
  std::string& out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return at_ == in_.size(); }
  std::uint8_t U8() {
    if (!Need(1)) return 0;
    return static_cast<std::uint8_t>(in_[at_++]);
  }
  std::uint32_t U32() {
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) value |= std::uint32_t{U8()} << (8 * i);
    return value;
  }
  std::uint64_t U64() {
    std::uint64_t value = 0;
    for (int i = 0; i < 8; ++i) value |= std::uint64_t{U8()} << (8 * i);
    return value;
  }
  std::string_view Str() {
    const std::uint32_t size = U32();
    if (!Need(size)) return {};
    std::string_view text = in_.substr(at_, size);
    at_ += size;
    return text;
  }

 private:
  bool Need(std::size_t bytes) {
    if (ok_ && in_.size() - at_ >= bytes) return true;
    ok_ = false;
    return false;
  }
  std::string_view in_;
  std::size_t at_ = 0;
  bool ok_ = true;
};

Status EncodeValue(const Record& record, std::string_view name, const Value& value,
                   Writer& out) {
  if (std::holds_alternative<std::monostate>(value)) {
    out.U8(kUnset);
  } else if (const bool* flag = std::get_if<bool>(&value)) {
    out.U8(kBool);
    out.U8(*flag ? 1 : 0);
  } else if (const std::int64_t* number = std::get_if<std::int64_t>(&value)) {
    out.U8(kInt);
    out.U64(static_cast<std::uint64_t>(*number));
  } else if (const double* real = std::get_if<double>(&value)) {
    out.U8(kDouble);
    out.U64(std::bit_cast<std::uint64_t>(*real));
  } else if (const std::string* text = std::get_if<std::string>(&value)) {
    out.U8(kText);
    out.Str(*text);
  } else if (const JsonText* json = std::get_if<JsonText>(&value)) {
    out.U8(kJson);
    out.Str(json->text);
  } else if (const Bytes* bytes = std::get_if<Bytes>(&value)) {
    out.U8(kBytes);
    out.Str(
        std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
  } else {
    const auto& payload = std::get<std::shared_ptr<const Payload>>(value);
    if (payload == nullptr || payload->codec().empty()) {
      return InvalidArgument(fmt::format(
          "item {}: field {} holds {}, which cannot be carried to the next stage group",
          record.id(), name,
          payload == nullptr ? "an empty payload" : payload->Describe()));
    }
    out.U8(kPayload);
    out.Str(payload->codec());
    out.StrInPlace([&](std::string& raw) { payload->Encode(raw); });
  }
  return Status::Ok();
}

Result<Value> DecodeValue(Reader& in, const StageRegistry& registry) {
  switch (in.U8()) {
    case kUnset:
      return Value();
    case kBool:
      return Value(in.U8() != 0);
    case kInt:
      return Value(static_cast<std::int64_t>(in.U64()));
    case kDouble:
      return Value(std::bit_cast<double>(in.U64()));
    case kText:
      return Value(std::string(in.Str()));
    case kJson:
      return Value(JsonText{std::string(in.Str())});
    case kBytes: {
      const std::string_view bytes = in.Str();
      return Value(Bytes(bytes.begin(), bytes.end()));
    }
    case kPayload: {
      const std::string_view codec = in.Str();
      const std::string_view encoded = in.Str();
      if (!in.ok()) break;
      const PayloadDecoder* decoder = registry.FindPayloadDecoder(codec);
      if (decoder == nullptr) {
        return Corruption(fmt::format("a payload of unknown type '{}'", codec));
      }
      SLUICE_ASSIGN_OR_RETURN(std::shared_ptr<const Payload> payload,
                              (*decoder)(encoded));
      return Value(std::move(payload));
    }
    default:
      break;
  }
  return Corruption("a field of unknown type");
}

}  // namespace

Result<std::string> EncodeRecords(std::span<const Record> records) {
  // One context and one buffer per thread, kept: the pack stage encodes records one
  // by one, and a fresh zstd context and buffer for each cost more than the work.
  thread_local const std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(
      ZSTD_createCCtx(), &ZSTD_freeCCtx);
  thread_local std::string raw;
  if (cctx == nullptr) return Internal("record codec: cannot make a zstd context");
  ZSTD_CCtx_reset(cctx.get(), ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, kLevel);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1);

  std::string compressed;
  Writer out(raw);
  std::uint32_t count = 0;
  const auto start_frame = [&] {
    raw.clear();
    raw.append(kMagic, sizeof(kMagic));
    out.U32(kVersion);
    out.U32(0);  // the record count, set when the frame ends
    count = 0;
  };
  const auto end_frame = [&]() -> Status {
    for (int i = 0; i < 4; ++i) raw[8 + i] = static_cast<char>(count >> (8 * i));
    const std::size_t at = compressed.size();
    compressed.resize(at + ZSTD_compressBound(raw.size()));
    const std::size_t size = ZSTD_compress2(cctx.get(), compressed.data() + at,
                                            compressed.size() - at, raw.data(), raw.size());
    if (ZSTD_isError(size)) {
      return Internal(fmt::format("record codec: zstd: {}", ZSTD_getErrorName(size)));
    }
    compressed.resize(at + size);
    return Status::Ok();
  };

  start_frame();
  for (const Record& record : records) {
    out.U64(record.id());
    out.Str(record.url());
    out.U32(static_cast<std::uint32_t>(record.columns().size()));
    for (const auto& [name, text] : record.columns()) {
      out.Str(name);
      out.Str(text);
    }
    out.U8(static_cast<std::uint8_t>(record.reason()));
    out.Str(record.error());
    out.U32(static_cast<std::uint32_t>(record.fields().size()));
    for (const auto& [name, value] : record.fields()) {
      out.Str(name);
      SLUICE_RETURN_IF_ERROR(EncodeValue(record, name, value, out));
    }
    ++count;
    if (out.size() > kMaxFrameBytes) {
      return InvalidArgument(fmt::format(
          "item {}: its record takes over {} MiB encoded, more than can travel to the next "
          "stage group",
          record.id(), kMaxFrameBytes >> 20));
    }
    if (out.size() >= kFrameBytes) {
      SLUICE_RETURN_IF_ERROR(end_frame());
      start_frame();
    }
  }
  if (count > 0 || compressed.empty()) SLUICE_RETURN_IF_ERROR(end_frame());
  if (raw.capacity() > 4 * kFrameBytes) raw = std::string();  // after a huge record
  return compressed;
}

namespace {

// One frame's records, appended to `records`.
Status DecodeFrame(std::string_view frame, const StageRegistry& registry,
                   std::vector<Record>& records) {
  const unsigned long long content = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN) {
    return Corruption("records: not a zstd frame of known size");
  }
  if (content > kMaxFrameBytes) {
    return Corruption(fmt::format("records: a frame of {} bytes, over the {} MiB a frame "
                                  "may hold",
                                  content, kMaxFrameBytes >> 20));
  }
  thread_local const std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(
      ZSTD_createDCtx(), &ZSTD_freeDCtx);
  if (dctx == nullptr) return Internal("record codec: cannot make a zstd context");
  ZSTD_DCtx_reset(dctx.get(), ZSTD_reset_session_only);
  // The buffer grows with what the frame really holds, not with what its header
  // claims: a damaged header never makes a big allocation by itself.
  std::string raw;
  std::size_t filled = 0;
  ZSTD_inBuffer input{frame.data(), frame.size(), 0};
  for (;;) {
    if (filled == raw.size()) {
      if (raw.size() == content) {
        return Corruption("records: longer than its header says");
      }
      raw.resize(static_cast<std::size_t>(std::min<unsigned long long>(
          content, std::max<std::size_t>(2 * raw.size(), std::size_t{1} << 16))));
    }
    ZSTD_outBuffer output{raw.data(), raw.size(), filled};
    const std::size_t left = ZSTD_decompressStream(dctx.get(), &output, &input);
    filled = output.pos;
    if (ZSTD_isError(left)) {
      return Corruption(fmt::format("records: {}", ZSTD_getErrorName(left)));
    }
    if (left == 0) break;  // the frame is whole, its checksum checked
    if (input.pos == input.size && filled < raw.size()) {
      return Corruption("records: truncated");
    }
  }
  if (filled != content) return Corruption("records: shorter than its header says");

  Reader in(raw);
  char magic[sizeof(kMagic)];
  for (char& c : magic) c = static_cast<char>(in.U8());
  if (!in.ok() || std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) {
    return Corruption("records: not an encoding of records");
  }
  if (const std::uint32_t version = in.U32(); version != kVersion) {
    return Corruption(fmt::format("records: encoding version {}, this sluice reads {}",
                                  version, kVersion));
  }
  const std::uint32_t count = in.U32();
  for (std::uint32_t i = 0; i < count && in.ok(); ++i) {
    const ItemId id = in.U64();
    Record record(id, std::string(in.Str()));
    for (std::uint32_t c = in.U32(); c > 0 && in.ok(); --c) {
      std::string name(in.Str());
      record.AddColumn(std::move(name), std::string(in.Str()));
    }
    const auto reason = static_cast<FailureReason>(in.U8());
    std::string error(in.Str());
    if (reason != FailureReason::kNone) {
      if (FailureReasonName(reason).empty()) {
        return Corruption(fmt::format("records: item {} has an unknown failure", id));
      }
      record.Fail(reason, std::move(error));
    }
    for (std::uint32_t f = in.U32(); f > 0 && in.ok(); --f) {
      const std::string name(in.Str());
      Result<Value> value = DecodeValue(in, registry);
      if (!value.ok()) {
        return value.status().WithContext(
            fmt::format("records: item {}, field {}", id, name));
      }
      record.Set(name, std::move(value).value());
    }
    records.push_back(std::move(record));
  }
  if (!in.ok()) return Corruption("records: truncated");
  if (!in.done()) return Corruption("records: bytes after the last record");
  return Status::Ok();
}

}  // namespace

Result<std::vector<Record>> DecodeRecords(std::string_view bytes,
                                          const StageRegistry& registry) {
  std::vector<Record> records;
  if (bytes.empty()) return Corruption("records: empty");
  while (!bytes.empty()) {
    const std::size_t frame = ZSTD_findFrameCompressedSize(bytes.data(), bytes.size());
    if (ZSTD_isError(frame)) {
      return Corruption(fmt::format("records: {}", ZSTD_getErrorName(frame)));
    }
    SLUICE_RETURN_IF_ERROR(DecodeFrame(bytes.substr(0, frame), registry, records));
    bytes.remove_prefix(frame);
  }
  return records;
}

Result<std::optional<Record>> RecordStream::Next() {
  while (next_ == ready_.size()) {
    ready_.clear();
    next_ = 0;
    SLUICE_ASSIGN_OR_RETURN(bool more, ReadFrame());
    if (!more) return std::optional<Record>();
  }
  return std::optional<Record>(std::move(ready_[next_++]));
}

Result<bool> RecordStream::ReadFrame() {
  // Bytes asked of read_ at a time; more when a frame is bigger than what is held.
  constexpr std::size_t kReadBytes = std::size_t{1} << 20;
  for (;;) {
    const std::string_view pending = std::string_view(buffer_).substr(start_);
    if (!pending.empty()) {
      // An error here is a frame not read whole yet, unless the encoding ended.
      const std::size_t frame = ZSTD_findFrameCompressedSize(pending.data(), pending.size());
      if (!ZSTD_isError(frame)) {
        SLUICE_RETURN_IF_ERROR(DecodeFrame(pending.substr(0, frame), registry_, ready_));
        start_ += frame;
        any_frame_ = true;
        return true;
      }
      if (at_end_) {
        return Corruption(fmt::format("records: {}", ZSTD_getErrorName(frame)));
      }
    } else if (at_end_) {
      if (!any_frame_) return Corruption("records: empty");
      return false;
    }
    buffer_.erase(0, start_);
    start_ = 0;
    const std::size_t held = buffer_.size();
    const std::size_t want = std::max(kReadBytes, held);
    buffer_.resize(held + want);
    Result<std::size_t> got = read_(buffer_.data() + held, want);
    buffer_.resize(held + (got.ok() ? std::min(*got, want) : 0));
    if (!got.ok()) return got.status();
    if (*got == 0) at_end_ = true;
  }
}

}  // namespace sluice
