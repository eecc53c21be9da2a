#include "src/core/owner_id.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace sluice {
namespace {

// Field 22 of /proc/PID/stat: the process start time in clock ticks since boot.
std::string ProcessStartTime(long pid) {
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string text;
  if (!std::getline(stat, text)) return "";
  // The command name (field 2) is in parentheses and may contain spaces.
  std::size_t close = text.rfind(')');
  if (close == std::string::npos) return "";
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  for (int index = 3; fields >> field; ++index) {
    if (index == 22) return field;
  }
  return "";
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

}  // namespace

std::string OwnerId() {
  long pid = static_cast<long>(getpid());
  return fmt::format("{}:{}:{}", HostName(), pid, ProcessStartTime(pid));
}

bool IsDeadLocalOwner(std::string_view owner) {
  std::size_t last = owner.rfind(':');
  if (last == std::string_view::npos || last == 0) return false;
  std::size_t middle = owner.rfind(':', last - 1);
  if (middle == std::string_view::npos) return false;
  if (owner.substr(0, middle) != HostName()) return false;  // not ours to judge
  std::string pid_text(owner.substr(middle + 1, last - middle - 1));
  std::string start(owner.substr(last + 1));
  char* end = nullptr;
  long pid = std::strtol(pid_text.c_str(), &end, 10);
  if (end == pid_text.c_str() || *end != '\0' || pid <= 0) return false;
  std::string current = ProcessStartTime(pid);
  return current.empty() || current != start;
}

}  // namespace sluice
