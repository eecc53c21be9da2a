// Status and Result<T>: how errors cross module boundaries in sluice.
//
// A Status is a code plus a human message that carries its context, outermost
// first ("store: lease batch 42: database is locked"). Functions that can fail
// return a [[nodiscard]] Status or Result<T>; exceptions from libraries are
// caught at the module edge and turned into a Status. Only main() exits.
#ifndef SLUICE_STATUS_H_
#define SLUICE_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sluice {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad input from the user: config, flags, input files
  kNotFound,         // a named thing does not exist
  kIoError,          // the operating system or a library refused an operation
  kCorruption,       // data on disk or in a stream is not what it should be
  kStaleLease,       // a lease was lost: expired and taken over, or released
  kBusy,             // a resource is held by someone else; retrying may help
  kUnavailable,      // a server cannot be reached now (connection lost or refused);
                     // retrying later may help
  kCancelled,        // the operation was stopped on request
  kInternal,         // a bug in sluice
};

// Returns a short lower-case name of `code`, e.g. "invalid argument".
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "context: message".
  Status WithContext(std::string_view context) const;

  // "ok", or the message (the code name is added when the message is empty).
  std::string ToString() const;

  // Marks a Status as deliberately unused.
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string msg) {
  return Status(StatusCode::kInvalidArgument, std::move(msg));
}
inline Status NotFound(std::string msg) {
  return Status(StatusCode::kNotFound, std::move(msg));
}
inline Status IoError(std::string msg) {
  return Status(StatusCode::kIoError, std::move(msg));
}
inline Status Corruption(std::string msg) {
  return Status(StatusCode::kCorruption, std::move(msg));
}
inline Status StaleLease(std::string msg) {
  return Status(StatusCode::kStaleLease, std::move(msg));
}
inline Status Busy(std::string msg) { return Status(StatusCode::kBusy, std::move(msg)); }
inline Status Unavailable(std::string msg) {
  return Status(StatusCode::kUnavailable, std::move(msg));
}
inline Status Cancelled(std::string msg) {
  return Status(StatusCode::kCancelled, std::move(msg));
}
inline Status Internal(std::string msg) {
  return Status(StatusCode::kInternal, std::move(msg));
}

// Either a value of type T or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : data_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(data_).ok() && "Result built from an ok Status");
  }

  bool ok() const { return std::holds_alternative<T>(data_); }
  // The error; REQUIRES: !ok().
  const Status& status() const { return std::get<Status>(data_); }
  // Ok when there is a value, else the error.
  Status ToStatus() const { return ok() ? Status() : status(); }

  // REQUIRES: ok().
  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace sluice

// Returns from the current function if `expr` yields a non-ok Status.
#define SLUICE_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::sluice::Status sluice_status_ = (expr);        \
    if (!sluice_status_.ok()) return sluice_status_; \
  } while (0)

#define SLUICE_CONCAT_INNER_(a, b) a##b
#define SLUICE_CONCAT_(a, b) SLUICE_CONCAT_INNER_(a, b)

// `SLUICE_ASSIGN_OR_RETURN(auto x, F());` binds x to F()'s value or returns its error.
#define SLUICE_ASSIGN_OR_RETURN(lhs, expr)                    \
  auto SLUICE_CONCAT_(sluice_result_, __LINE__) = (expr);     \
  if (!SLUICE_CONCAT_(sluice_result_, __LINE__).ok())         \
    return SLUICE_CONCAT_(sluice_result_, __LINE__).status(); \
  lhs = std::move(SLUICE_CONCAT_(sluice_result_, __LINE__)).value()

#endif  // SLUICE_STATUS_H_
