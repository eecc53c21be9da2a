#include "src/cli/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace sluice::cli {
namespace {

std::atomic<LogFormat> log_format{LogFormat::kText};
std::atomic<std::uint64_t> logged_lines{0};

spdlog::logger& Logger() {
  // stderr, unbuffered lines, no colours: what a terminal, a file and journald take.
  static const std::shared_ptr<spdlog::logger> logger = [] {
    auto made = std::make_shared<spdlog::logger>(
        "sluice", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    made->set_level(spdlog::level::info);
    made->flush_on(spdlog::level::info);
    return made;
  }();
  return *logger;
}

}  // namespace

void SetLogFormat(LogFormat format) {
  log_format = format;
  // The message is made whole by Log() in either format: the pattern adds only the
  // time, in the JSON form.
  Logger().set_pattern(format == LogFormat::kJson ? R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ",%v})"
                                                  : "%v",
                       spdlog::pattern_time_type::utc);
}

void Log(LogLevel level, std::string_view message) {
  static const bool patterned = [] {
    SetLogFormat(log_format.load());
    return true;
  }();
  (void)patterned;  // the pattern, set once before the first line
  const spdlog::level::level_enum spd = level == LogLevel::kError     ? spdlog::level::err
                                        : level == LogLevel::kWarning ? spdlog::level::warn
                                                                      : spdlog::level::info;
  if (log_format.load() == LogFormat::kJson) {
    const char* name = level == LogLevel::kError     ? "error"
                       : level == LogLevel::kWarning ? "warning"
                                                     : "info";
    const std::string text = nlohmann::json(std::string(message))
                                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    Logger().log(spd, "\"level\":\"{}\",\"message\":{}", name, text);
  } else {
    Logger().log(spd, "sluice: {}", message);
  }
  logged_lines.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t LoggedLines() { return logged_lines.load(std::memory_order_relaxed); }

}  // namespace sluice::cli
