#include "src/cli/live_status.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;

fs::path WorkersDir(const std::string& workdir) { return fs::path(workdir) / "workers"; }

fs::path OwnFile(const std::string& workdir) {
  return WorkersDir(workdir) / fmt::format("{}.json", static_cast<long>(getpid()));
}

}  // namespace

Status WriteLiveStatus(const std::string& workdir, const LiveStatus& status) {
  const WorkerProgress& p = status.progress;
  nlohmann::json out = {
      {"owner", status.owner},
      {"updated_ms", status.updated_ms},
      {"batches_held", p.batches_in_flight},
      {"records_in_flight", p.records_in_flight},
      {"records_done", p.records_done},
      {"items_committed", p.items_committed},
      {"items_failed", p.items_failed},
      {"batches_committed", p.batches_committed},
      {"batches_lost", p.batches_lost},
      {"renew_errors", p.renew_errors},
      {"busy_retries", p.busy_retries},
  };
  std::error_code error;
  fs::create_directories(WorkersDir(workdir), error);
  const fs::path target = OwnFile(workdir);
  const fs::path temp = target.string() + ".tmp";
  {
    std::ofstream file(temp, std::ios::trunc);
    file << out.dump() << '\n';
    if (!file.good()) {
      return IoError(fmt::format("cannot write {}", temp.string()));
    }
  }
  fs::rename(temp, target, error);
  if (error) {
    return IoError(fmt::format("cannot rename {} to {}: {}", temp.string(),
                               target.string(), error.message()));
  }
  return Status::Ok();
}

void RemoveLiveStatus(const std::string& workdir) {
  std::error_code error;
  fs::remove(OwnFile(workdir), error);  // missing is fine; nothing else to do
}

std::vector<LiveStatus> ReadLiveStatuses(const std::string& workdir) {
  std::vector<LiveStatus> statuses;
  std::error_code error;
  fs::directory_iterator it(WorkersDir(workdir), error);
  if (error) return statuses;  // no process ever ran here
  for (const fs::directory_entry& entry : it) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream file(entry.path());
    std::stringstream text;
    text << file.rdbuf();
    const nlohmann::json in = nlohmann::json::parse(text.str(), nullptr, false);
    if (!in.is_object() || !in.contains("owner") || !in["owner"].is_string()) continue;
    LiveStatus status;
    status.owner = in["owner"].get<std::string>();
    if (IsDeadLocalOwner(status.owner)) {
      fs::remove(entry.path(), error);  // a crashed run's: nothing runs there
      continue;
    }
    auto number = [&](const char* key) -> std::uint64_t {
      return in.contains(key) && in[key].is_number_unsigned()
                 ? in[key].get<std::uint64_t>()
                 : 0;
    };
    status.updated_ms = static_cast<std::int64_t>(number("updated_ms"));
    WorkerProgress& p = status.progress;
    p.batches_in_flight = number("batches_held");
    p.records_in_flight = number("records_in_flight");
    p.records_done = number("records_done");
    p.items_committed = number("items_committed");
    p.items_failed = number("items_failed");
    p.batches_committed = number("batches_committed");
    p.batches_lost = number("batches_lost");
    p.renew_errors = number("renew_errors");
    p.busy_retries = number("busy_retries");
    statuses.push_back(std::move(status));
  }
  std::sort(statuses.begin(), statuses.end(),
            [](const LiveStatus& a, const LiveStatus& b) { return a.owner < b.owner; });
  return statuses;
}

}  // namespace sluice::cli
