#include "sluice/record.h"

#include <array>

namespace sluice {

const std::string& Record::EmptyUrl() {
  static const std::string empty;
  return empty;
}

namespace {

struct ReasonName {
  FailureReason reason;
  std::string_view name;
};

constexpr std::array kReasonNames = {
    ReasonName{FailureReason::kInvalidUrl, "invalid_url"},
    ReasonName{FailureReason::kForbidden, "forbidden"},
    ReasonName{FailureReason::kDns, "dns"},
    ReasonName{FailureReason::kConnect, "connect"},
    ReasonName{FailureReason::kTimeout, "timeout"},
    ReasonName{FailureReason::kHttp4xx, "http_4xx"},
    ReasonName{FailureReason::kHttp5xx, "http_5xx"},
    ReasonName{FailureReason::kTooManyRedirects, "too_many_redirects"},
    ReasonName{FailureReason::kTooLarge, "too_large"},
    ReasonName{FailureReason::kOptOut, "opt_out"},
    ReasonName{FailureReason::kNotImage, "not_image"},
    ReasonName{FailureReason::kDecode, "decode"},
    ReasonName{FailureReason::kTooSmall, "too_small"},
    ReasonName{FailureReason::kAspectRatio, "aspect_ratio"},
    ReasonName{FailureReason::kHashMismatch, "hash_mismatch"},
    ReasonName{FailureReason::kInjected, "injected"},
    ReasonName{FailureReason::kStage, "stage"},
    ReasonName{FailureReason::kInternal, "internal"},
    ReasonName{FailureReason::kFiltered, "filtered"},
};

}  // namespace

std::string_view FailureReasonName(FailureReason reason) {
  for (const auto& entry : kReasonNames) {
    if (entry.reason == reason) return entry.name;
  }
  return "";
}

std::optional<FailureReason> ParseFailureReason(std::string_view name) {
  for (const auto& entry : kReasonNames) {
    if (entry.name == name) return entry.reason;
  }
  return std::nullopt;
}

const std::vector<FailureReason>& AllFailureReasons() {
  static const std::vector<FailureReason> all = [] {
    std::vector<FailureReason> reasons;
    for (const auto& entry : kReasonNames) reasons.push_back(entry.reason);
    return reasons;
  }();
  return all;
}

bool IsResultValue(const Value& value) {
  return std::holds_alternative<bool>(value) ||
         std::holds_alternative<std::int64_t>(value) ||
         std::holds_alternative<double>(value) ||
         std::holds_alternative<std::string>(value) ||
         std::holds_alternative<JsonText>(value);
}

const std::string* Record::FindColumn(std::string_view name) const {
  for (const auto& [column, text] : columns_) {
    if (column == name) return &text;
  }
  return nullptr;
}

void Record::Set(std::string_view name, Value value) {
  for (auto& [field, current] : fields_) {
    if (field == name) {
      current = std::move(value);
      return;
    }
  }
  fields_.emplace_back(std::string(name), std::move(value));
}

const Value* Record::Find(std::string_view name) const {
  for (const auto& [field, value] : fields_) {
    if (field == name) return &value;
  }
  return nullptr;
}

void Record::EraseInFlightData(std::string_view keep) {
  std::erase_if(fields_, [&](const std::pair<std::string, Value>& field) {
    return !IsResultValue(field.second) &&
           !std::holds_alternative<std::monostate>(field.second) &&
           (keep.empty() || field.first != keep);
  });
}

void Record::Erase(std::string_view name) {
  for (auto it = fields_.begin(); it != fields_.end(); ++it) {
    if (it->first == name) {
      fields_.erase(it);
      return;
    }
  }
}

void Record::Fail(FailureReason reason, std::string error) {
  if (failed() || reason == FailureReason::kNone) return;
  reason_ = reason;
  error_ = std::move(error);
}

}  // namespace sluice
