// Records: one item's data in flight through a pipeline.
//
// A Record carries the item's id and url, the extra input columns it was ingested
// with, and the named fields stages produce. A stage reads some fields and writes
// others. A record that failed keeps its reason and skips the remaining stages; it
// still reaches the sink, so that every item ends with a result.
//
// Records move between stages by value in chunks; they are not thread-safe, and are
// owned by exactly one stage at a time.
#ifndef SLUICE_RECORD_H_
#define SLUICE_RECORD_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace sluice {

using ItemId = std::uint64_t;
using BatchId = std::uint64_t;

// Why an item failed. The list is fixed so that failures can be counted, compared
// across runs and retried by reason; the names are part of the CLI and export.
enum class FailureReason : std::uint8_t {
  kNone = 0,
  kInvalidUrl,        // "invalid_url": not a parseable http(s) URL
  kForbidden,         // "forbidden": refused by a safety rule (scheme, private address)
  kDns,               // "dns": name did not resolve
  kConnect,           // "connect": TCP/TLS connection failed
  kTimeout,           // "timeout": a time limit was hit
  kHttp4xx,           // "http_4xx"
  kHttp5xx,           // "http_5xx"
  kTooManyRedirects,  // "too_many_redirects"
  kTooLarge,          // "too_large": body or pixel count over a cap
  kOptOut,            // "opt_out": the server asked not to be used (X-Robots-Tag)
  kNotImage,          // "not_image": content is not an image
  kDecode,            // "decode": image bytes could not be decoded
  kTooSmall,          // "too_small": below a size filter
  kAspectRatio,       // "aspect_ratio": over the maximum aspect ratio
  kHashMismatch,      // "hash_mismatch": content differs from the expected hash
  kInjected,          // "injected": failed on purpose by the fail stage
  kStage,             // "stage": a stage reported an error of its own
  kInternal,          // "internal": a bug; the message says where
  // Not a failure: dropped on purpose by a filter's predicate (status "filtered",
  // never retried). Like a failure, the record skips the stages after the filter
  // and still reaches the sink.
  kFiltered,  // "filtered"
};

// True for the reasons that are failures: all but kNone and kFiltered.
inline bool IsFailure(FailureReason reason) {
  return reason != FailureReason::kNone && reason != FailureReason::kFiltered;
}

// The stable name of a reason, e.g. "http_4xx". kNone is "".
std::string_view FailureReasonName(FailureReason reason);
// Parses a name written by FailureReasonName; nullopt for unknown names.
std::optional<FailureReason> ParseFailureReason(std::string_view name);
// Every reason except kNone, in declaration order.
const std::vector<FailureReason>& AllFailureReasons();

using Bytes = std::vector<std::uint8_t>;

// A value a stage attaches to a record that is not one of the plain types below,
// such as a decoded image. Payloads are shared read-only between copies of a record.
class Payload {
 public:
  virtual ~Payload() = default;
  // A short description used when the value is printed, e.g. "image 640x480".
  virtual std::string Describe() const = 0;

  // How the value travels to a later stage group (a pipeline split by function,
  // src/core/record_codec.h): the name of its type, under which a decoder is
  // registered (StageRegistry::RegisterPayloadDecoder), and Encode() appends the
  // bytes that decoder reads back. "" (the default): the value cannot leave the
  // process, and a group boundary after the stage that makes it is refused.
  virtual std::string_view codec() const { return {}; }
  virtual void Encode(std::string& out) const { (void)out; }
};

// A list or an object a stage gives as a result (e.g. the boxes of the faces found),
// as JSON text: results, metadata lines and exports carry it as that JSON array or
// object, never as a string holding it (src/core/result_json.h). Text that is not
// valid JSON is written as a string, so that nothing is lost.
struct JsonText {
  std::string text;
  bool operator==(const JsonText&) const = default;
};

// A field value. Text, numbers, booleans and JSON are written to results; Bytes and
// Payload values are in-flight data and are not.
using Value = std::variant<std::monostate, bool, std::int64_t, double, std::string, Bytes,
                           std::shared_ptr<const Payload>, JsonText>;

// True if `value` is written to results (text, numbers, booleans, JSON).
bool IsResultValue(const Value& value);

class Record {
 public:
  Record() = default;
  Record(ItemId id, std::string url)
      : id_(id), url_(std::make_shared<const std::string>(std::move(url))) {}

  ItemId id() const { return id_; }
  const std::string& url() const { return url_ != nullptr ? *url_ : EmptyUrl(); }

  // Extra input columns, as ingested (name -> text), in input order.
  const std::vector<std::pair<std::string, std::string>>& columns() const {
    return columns_;
  }
  void AddColumn(std::string name, std::string text) {
    columns_.emplace_back(std::move(name), std::move(text));
  }
  // The column's text, or nullptr if the item has no such column.
  const std::string* FindColumn(std::string_view name) const;

  // Fields produced by stages, in the order they were first set.
  const std::vector<std::pair<std::string, Value>>& fields() const { return fields_; }
  // Sets (or replaces) a field.
  void Set(std::string_view name, Value value);
  // The field's value, or nullptr if unset.
  const Value* Find(std::string_view name) const;
  // Removes a field if present.
  void Erase(std::string_view name);
  // Removes the in-flight fields (Bytes and Payload values, which results never
  // hold) except the one named `keep`, if any: what a finished record no longer
  // needs while it waits for the rest of its batch.
  void EraseInFlightData(std::string_view keep = {});

  bool failed() const { return reason_ != FailureReason::kNone; }
  FailureReason reason() const { return reason_; }
  // Details for a human, e.g. "HTTP 404 from example.com".
  const std::string& error() const { return error_; }
  // Marks the record failed. The first failure wins; later calls are ignored.
  void Fail(FailureReason reason, std::string error = {});

 private:
  static const std::string& EmptyUrl();

  ItemId id_ = 0;
  // Never changes once made, so the copies of a record (a copy operator's branches)
  // share it instead of each allocating its own.
  std::shared_ptr<const std::string> url_;
  std::vector<std::pair<std::string, std::string>> columns_;
  std::vector<std::pair<std::string, Value>> fields_;
  FailureReason reason_ = FailureReason::kNone;
  std::string error_;
};

}  // namespace sluice

#endif  // SLUICE_RECORD_H_
