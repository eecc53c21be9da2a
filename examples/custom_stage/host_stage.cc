#include "host_stage.h"

#include <algorithm>
#include <cctype>

namespace custom_stage {

std::string HostOf(std::string_view url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return "";
  std::string_view rest = url.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const std::size_t at = rest.rfind('@'); at != std::string_view::npos) {
    rest = rest.substr(at + 1);
  }
  if (!rest.empty() && rest.front() == '[') {  // an IPv6 address: "[::1]:8080"
    rest = rest.substr(0, rest.find(']') + 1);
  } else {
    rest = rest.substr(0, rest.find(':'));
  }
  std::string host(rest);
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return host;
}

void HostStage::ProcessOne(sluice::Record& record) {
  std::string host = HostOf(record.url());
  if (host.empty()) {
    record.Fail(sluice::FailureReason::kInvalidUrl, "the URL has no host");
    return;
  }
  record.Set(field_, std::move(host));
}

sluice::Result<std::unique_ptr<sluice::Stage>> MakeHostStage(
    sluice::StageOptions& options) {
  std::string field = options.GetString("field", "host");
  if (field.empty()) {
    options.AddError("field", "must not be empty");
    return sluice::InvalidArgument(options.path() + ".field: must not be empty");
  }
  return std::unique_ptr<sluice::Stage>(std::make_unique<HostStage>(std::move(field)));
}

}  // namespace custom_stage
