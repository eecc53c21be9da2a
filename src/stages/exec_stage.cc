#include "src/stages/exec_stage.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "src/core/result_json.h"

namespace sluice {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long a crashed subprocess (one that closed its stdout) is given to exit by
// itself, so that its exit status is told rather than the kill's.
constexpr milliseconds kCrashExitWait{500};
// The most of a bad reply a message quotes.
constexpr std::size_t kQuoteBytes = 120;

std::string Quote(std::string_view text) {
  if (text.size() <= kQuoteBytes) return fmt::format("'{}'", text);
  return fmt::format("'{}...' ({} bytes)", text.substr(0, kQuoteBytes), text.size());
}

std::string Base64(const Bytes& bytes) {
  std::string text(4 * ((bytes.size() + 2) / 3), '\0');
  // EVP_EncodeBlock takes an int length: encoded in pieces of 3 * 2^28 bytes at most.
  constexpr std::size_t kPiece = std::size_t{3} << 28;
  std::size_t in = 0;
  std::size_t out = 0;
  while (in < bytes.size()) {
    const std::size_t size = std::min(kPiece, bytes.size() - in);
    out += static_cast<std::size_t>(
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text.data() + out),
                        bytes.data() + in, static_cast<int>(size)));
    in += size;
  }
  text.resize(out);
  return text;
}

Status WriteWholeFile(const std::string& path, const Bytes& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return IoError(fmt::format("cannot create {}: {}", path, std::strerror(errno)));
  }
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t wrote = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) {
      const int error = errno;
      ::close(fd);
      return IoError(fmt::format("cannot write {}: {}", path, std::strerror(error)));
    }
    done += static_cast<std::size_t>(wrote);
  }
  if (::close(fd) != 0) {
    return IoError(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  }
  return Status::Ok();
}

void WriteToStandardError(std::string_view line) {
  // One write per line: lines of different threads do not interleave.
  std::string text = fmt::format("sluice: {}\n", line);
  std::string_view rest = text;
  while (!rest.empty()) {
    const ssize_t wrote = ::write(STDERR_FILENO, rest.data(), rest.size());
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) return;
    rest.remove_prefix(static_cast<std::size_t>(wrote));
  }
}

// A reply's value as a field value; nullopt for null (the field is left as it is).
std::optional<Value> FieldValue(const nlohmann::json& json) {
  switch (json.type()) {
    case nlohmann::json::value_t::null:
      return std::nullopt;
    case nlohmann::json::value_t::boolean:
      return Value(json.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value(json.get<std::int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const std::uint64_t number = json.get<std::uint64_t>();
      if (number <=
          static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return Value(static_cast<std::int64_t>(number));
      }
      return Value(static_cast<double>(number));
    }
    case nlohmann::json::value_t::number_float:
      return Value(json.get<double>());
    case nlohmann::json::value_t::string:
      return Value(json.get<std::string>());
    default:  // arrays, objects (binary does not come out of the parser)
      return Value(
          JsonText{json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
  }
}

}  // namespace

struct ExecStage::Request {
  Record* record = nullptr;
  std::string line;        // the request, with its newline
  std::string bytes_path;  // the temporary file sent, removed after the reply; "" = none
};

Result<std::unique_ptr<ExecStage>> ExecStage::Create(ExecOptions options) {
  if (options.command.empty()) {
    return InvalidArgument(fmt::format("{}.command: empty", options.where));
  }
  std::string temp_dir;
  if (!options.bytes_field.empty() && options.bytes_as == ExecBytesAs::kPath) {
    std::error_code error;
    const std::filesystem::path parent = options.temp_dir.empty()
                                             ? std::filesystem::temp_directory_path(error)
                                             : std::filesystem::path(options.temp_dir);
    std::string pattern = (parent / "sluice-exec-XXXXXX").string();
    if (error || ::mkdtemp(pattern.data()) == nullptr) {
      return IoError(fmt::format(
          "{}: cannot make a directory for the bytes files in {}: {}", options.where,
          parent.string(), error ? error.message() : std::strerror(errno)));
    }
    temp_dir = pattern;
  }
  std::unique_ptr<ExecStage> stage(
      new ExecStage(std::move(options), std::move(temp_dir)));
  const ExecOptions& o = stage->options_;
  Result<std::unique_ptr<ExecSubprocess>> first = stage->Spawn();
  if (!first.ok()) {
    return Status(first.status().code(),
                  fmt::format("{}.command: {}", o.where, first.status().message()));
  }
  std::unique_ptr<ExecSubprocess> child = std::move(first).value();
  if (o.startup.count() > 0) {
    // Wait for its first line or its end: a child that writes before any request
    // is not speaking the protocol, one that ends did not start.
    std::string line;
    const ExecSubprocess::Event event = child->NextLine(Clock::now() + o.startup, &line);
    if (event != ExecSubprocess::Event::kTimeout) {
      const bool ended = event == ExecSubprocess::Event::kClosed;
      const std::string how = child->Terminate(ended ? kCrashExitWait : milliseconds(0));
      const std::string tail = child->StderrTail();
      const std::string why =
          ended ? fmt::format("{} {} before any request", o.command[0], how)
                : fmt::format("{} wrote on its stdout before any request: {}",
                              o.command[0], Quote(line));
      return InvalidArgument(fmt::format("{}.command: {}{}", o.where, why,
                                         tail.empty() ? "" : "; stderr: " + tail));
    }
  }
  stage->Release(std::move(child));
  return stage;
}

ExecStage::~ExecStage() {
  // Each destructor closes its child's stdin and waits up to the grace: they are
  // closed all at once first, so that the waits overlap.
  std::vector<std::unique_ptr<ExecSubprocess>> idle;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    idle.swap(idle_);
  }
  std::vector<std::thread> enders;
  for (std::unique_ptr<ExecSubprocess>& child : idle) {
    enders.emplace_back([c = std::move(child)]() mutable { c.reset(); });
  }
  for (std::thread& ender : enders) ender.join();
  if (!temp_dir_.empty()) {
    std::error_code ignored;  // best effort: a leftover file in /tmp harms nothing
    std::filesystem::remove_all(temp_dir_, ignored);
  }
}

StageFields ExecStage::Fields() const {
  std::vector<std::string> reads;
  if (!options_.bytes_field.empty()) reads.push_back(options_.bytes_field);
  std::vector<std::string> columns;
  for (const std::string& field : options_.fields) {
    if (field != "url") columns.push_back(field);
  }
  return DeclaredFields(std::move(reads), options_.writes, std::move(columns));
}

std::vector<std::pair<std::string, std::uint64_t>> ExecStage::Counters() const {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  return {{"exec_restarts_total", restarts_.load(kRelaxed)},
          {"exec_crashes_total", crashes_.load(kRelaxed)},
          {"exec_timeouts_total", timeouts_.load(kRelaxed)},
          {"exec_bad_replies_total", bad_replies_.load(kRelaxed)},
          {"exec_error_replies_total", error_replies_.load(kRelaxed)}};
}

Result<std::unique_ptr<ExecSubprocess>> ExecStage::Spawn() const {
  const StageLog& log = options_.log;
  std::string prefix = fmt::format("{} {}", options_.where, options_.command[0]);
  auto sink = [&log, prefix = std::move(prefix)](pid_t pid, std::string_view line) {
    const std::string text = fmt::format("{} (pid {}): {}", prefix, pid, line);
    if (log) {
      log(text);
    } else {
      WriteToStandardError(text);
    }
  };
  return ExecSubprocess::Start(options_.command, std::move(sink), options_.grace,
                               options_.max_reply_bytes);
}

Result<std::unique_ptr<ExecSubprocess>> ExecStage::Acquire(bool replacing) {
  while (!replacing) {
    std::unique_ptr<ExecSubprocess> child;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (idle_.empty()) break;
      child = std::move(idle_.back());
      idle_.pop_back();
    }
    if (!child->Exited()) return child;
    // It ended while idle: not a record's fault, but a restart all the same.
    crashes_.fetch_add(1, std::memory_order_relaxed);
    const std::string how = child->Terminate();
    const std::string tail = child->StderrTail();
    const std::string text = fmt::format(
        "{}: {} (pid {}) {} between records{}", options_.where, options_.command[0],
        child->pid(), how, tail.empty() ? "" : "; stderr: " + tail);
    if (options_.log) {
      options_.log(text);
    } else {
      WriteToStandardError(text);
    }
    replacing = true;
  }
  // A new subprocess while the last ones failed (in this chunk or another one)
  // replaces a dead one: it waits for the backoff.
  const std::uint32_t failures_in_a_row =
      failures_in_a_row_.load(std::memory_order_relaxed);
  if (replacing || failures_in_a_row > 0) {
    restarts_.fetch_add(1, std::memory_order_relaxed);
    const std::uint32_t failures = std::max<std::uint32_t>(1, failures_in_a_row);
    // Doubling from restart_backoff; it stops at the cap, so it cannot overflow.
    const std::int64_t base = options_.restart_backoff.count();
    const std::int64_t cap = options_.max_restart_backoff.count();
    std::int64_t wait = base;
    for (std::uint32_t i = 1; i < failures && wait < cap; ++i) wait *= 2;
    std::this_thread::sleep_for(milliseconds(std::min(wait, cap)));
  }
  return Spawn();
}

void ExecStage::Release(std::unique_ptr<ExecSubprocess> child) {
  if (child == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  idle_.push_back(std::move(child));
}

std::string ExecStage::Discard(std::unique_ptr<ExecSubprocess>& child,
                               milliseconds wait) {
  failures_in_a_row_.fetch_add(1, std::memory_order_relaxed);
  std::string how = child->Terminate(wait);
  const std::string tail = child->StderrTail();
  if (!tail.empty()) how += "; stderr: " + tail;
  child.reset();
  return how;
}

bool ExecStage::MakeRequest(Record& record, Request& request) {
  request.record = &record;
  nlohmann::ordered_json json;
  json["id"] = record.id();
  for (const std::string& name : options_.fields) {
    if (name == "url") {
      json["url"] = record.url();
      continue;
    }
    if (const Value* value = record.Find(name); value != nullptr) {
      OrderedJson field = ResultValueJson(*value);
      if (!field.is_null()) json[name] = std::move(field);
    } else if (const std::string* column = record.FindColumn(name); column != nullptr) {
      json[name] = *column;
    }
  }
  if (!options_.bytes_field.empty()) {
    const Value* value = record.Find(options_.bytes_field);
    const Bytes* bytes = value == nullptr ? nullptr : std::get_if<Bytes>(value);
    if (bytes == nullptr) {
      record.Fail(FailureReason::kStage,
                  fmt::format("exec: no bytes in \"{}\" to send", options_.bytes_field));
      return false;
    }
    if (options_.bytes_as == ExecBytesAs::kBase64) {
      json["bytes_base64"] = Base64(*bytes);
    } else {
      std::string path = fmt::format("{}/{}-{}", temp_dir_, record.id(),
                                     next_file_.fetch_add(1, std::memory_order_relaxed));
      if (Status wrote = WriteWholeFile(path, *bytes); !wrote.ok()) {
        record.Fail(FailureReason::kStage, "exec: " + wrote.message());
        return false;
      }
      json["bytes_path"] = path;
      request.bytes_path = std::move(path);
    }
  }
  request.line = DumpJson(json);
  request.line += '\n';
  return true;
}

std::string ExecStage::ApplyReply(std::string_view line, Record& record) {
  nlohmann::json reply;
  try {
    reply = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception&) {
    return fmt::format("not JSON: {}", Quote(line));
  }
  if (!reply.is_object()) return fmt::format("not a JSON object: {}", Quote(line));
  auto id = reply.find("id");
  if (id == reply.end()) return fmt::format("no \"id\": {}", Quote(line));
  if (!id->is_number_unsigned() && !id->is_number_integer()) {
    return fmt::format("\"id\" is not an integer: {}", Quote(line));
  }
  if (!id->is_number_unsigned() || id->get<std::uint64_t>() != record.id()) {
    return fmt::format(
        "\"id\" {} where {} was expected (replies come in the order of "
        "the requests)",
        id->dump(), record.id());
  }
  if (auto error = reply.find("error"); error != reply.end() && !error->is_null()) {
    error_replies_.fetch_add(1, std::memory_order_relaxed);
    record.Fail(FailureReason::kStage,
                fmt::format("exec: {}", error->is_string() ? error->get<std::string>()
                                                           : error->dump()));
    return "";
  }
  // Checked before anything is set: a reply is applied whole or not at all.
  for (const auto& [key, value] : reply.items()) {
    if (key == "id" || key == "error") continue;
    if (std::find(options_.writes.begin(), options_.writes.end(), key) ==
        options_.writes.end()) {
      record.Fail(FailureReason::kStage,
                  fmt::format("exec: the reply sets \"{}\", which is not in {}.writes",
                              key, options_.where));
      return "";
    }
  }
  for (const auto& [key, value] : reply.items()) {
    if (key == "id" || key == "error") continue;
    if (std::optional<Value> field = FieldValue(value); field.has_value()) {
      record.Set(key, std::move(*field));
    }
  }
  return "";
}

void ExecStage::Process(std::span<Record> records) {
  std::deque<Record*> queue;
  for (Record& record : records) {
    if (!record.failed()) queue.push_back(&record);
  }
  if (queue.empty()) return;
  std::unique_ptr<ExecSubprocess> child;
  bool replacing = false;  // the chunk's subprocess failed: the next one is a restart
  std::vector<Request> group;
  auto remove_file = [](Request& request) {
    if (request.bytes_path.empty()) return;
    ::unlink(request.bytes_path.c_str());
    request.bytes_path.clear();
  };
  while (!queue.empty()) {
    if (child == nullptr) {
      Result<std::unique_ptr<ExecSubprocess>> acquired = Acquire(replacing);
      replacing = true;
      if (!acquired.ok()) {
        failures_in_a_row_.fetch_add(1, std::memory_order_relaxed);
        for (Record* record : queue) {
          record->Fail(FailureReason::kStage, "exec: " + acquired.status().message());
        }
        return;
      }
      child = std::move(acquired).value();
    }
    // The next group's requests, queued at once: NextLine() writes them while it
    // reads the replies.
    group.clear();
    while (!queue.empty() && group.size() < options_.batch) {
      Request request;
      Record* record = queue.front();
      queue.pop_front();
      if (MakeRequest(*record, request)) group.push_back(std::move(request));
    }
    for (Request& request : group) {
      child->Send(request.line);
      request.line.clear();
    }
    std::size_t answered = 0;
    while (answered < group.size()) {
      Record& record = *group[answered].record;
      std::string line;
      const ExecSubprocess::Event event =
          child->NextLine(Clock::now() + options_.timeout, &line);
      if (event == ExecSubprocess::Event::kLine) {
        const std::string wrong = ApplyReply(line, record);
        remove_file(group[answered]);
        ++answered;
        if (wrong.empty()) {
          failures_in_a_row_.store(0, std::memory_order_relaxed);
          continue;
        }
        bad_replies_.fetch_add(1, std::memory_order_relaxed);
        const pid_t pid = child->pid();
        Discard(child, milliseconds(0));
        record.Fail(
            FailureReason::kStage,
            fmt::format("exec: bad reply from {} (pid {}, restarted) for item {}: {}",
                        options_.command[0], pid, record.id(), wrong));
        break;
      }
      remove_file(group[answered]);
      ++answered;
      const pid_t pid = child->pid();
      if (event == ExecSubprocess::Event::kTimeout) {
        timeouts_.fetch_add(1, std::memory_order_relaxed);
        Discard(child, milliseconds(0));
        record.Fail(
            FailureReason::kTimeout,
            fmt::format("exec: no reply from {} (pid {}) within {} ms; killed and "
                        "restarted",
                        options_.command[0], pid, options_.timeout.count()));
      } else if (event == ExecSubprocess::Event::kTooLong) {
        bad_replies_.fetch_add(1, std::memory_order_relaxed);
        Discard(child, milliseconds(0));
        record.Fail(
            FailureReason::kStage,
            fmt::format("exec: bad reply from {} (pid {}, restarted) for item {}: "
                        "a line longer than {} bytes (max_reply_bytes)",
                        options_.command[0], pid, record.id(), options_.max_reply_bytes));
      } else {
        crashes_.fetch_add(1, std::memory_order_relaxed);
        const std::string how = Discard(child, kCrashExitWait);
        record.Fail(
            FailureReason::kStage,
            fmt::format("exec: {} (pid {}) {} before answering item {}; restarted",
                        options_.command[0], pid, how, record.id()));
      }
      break;
    }
    // Requests left without a reply go to the next subprocess, in their order.
    for (std::size_t i = group.size(); i > answered; --i) {
      remove_file(group[i - 1]);
      queue.push_front(group[i - 1].record);
    }
  }
  Release(std::move(child));
}

Status RegisterExecStage(StageRegistry& registry, StageLog log) {
  return registry.Register(
      "exec",
      "runs each record through a subprocess in any language, one JSON object per line "
      "on its stdin and stdout",
      [log = std::move(log)](StageOptions& options) -> Result<std::unique_ptr<Stage>> {
        ExecOptions exec;
        exec.where = options.path();
        exec.log = log;
        exec.command = options.GetStringList("command", {});
        exec.timeout = milliseconds(options.GetInt("timeout_ms", 10000, 1, 86'400'000));
        exec.fields = options.GetStringList("fields", exec.fields);
        exec.bytes_field = options.GetString("bytes_field", "");
        exec.bytes_as =
            options.GetChoice("bytes_as", "path", {"path", "base64"}) == "base64"
                ? ExecBytesAs::kBase64
                : ExecBytesAs::kPath;
        exec.batch = static_cast<std::size_t>(options.GetInt("batch", 1, 1, 100'000));
        exec.writes = options.GetStringList("writes", {});
        exec.restart_backoff =
            milliseconds(options.GetInt("restart_backoff_ms", 100, 0, 3'600'000));
        exec.max_restart_backoff =
            milliseconds(options.GetInt("max_restart_backoff_ms", 10000, 0, 3'600'000));
        exec.startup = milliseconds(options.GetInt("startup_ms", 200, 0, 600'000));
        exec.grace = milliseconds(options.GetInt("grace_ms", 1000, 0, 600'000));
        exec.max_reply_bytes = static_cast<std::size_t>(
            options.GetInt("max_reply_bytes", 64 << 20, 1024, std::int64_t{1} << 34));
        exec.temp_dir = options.GetString("temp_dir", "");
        auto refuse = [&](std::string_view key, std::string message) -> Status {
          options.AddError(key, message);
          return InvalidArgument(fmt::format("{}.{}: {}", options.path(), key, message));
        };
        if (exec.command.empty() || exec.command[0].empty()) {
          return refuse("command",
                        "an exec stage needs `command`, the program to run and its "
                        "arguments, e.g. [/usr/bin/python3, script.py] (docs/exec.md)");
        }
        std::set<std::string> seen;
        for (const std::string& field : exec.writes) {
          if (field == "id" || field == "error" || field.empty()) {
            return refuse("writes",
                          fmt::format("'{}' cannot be written by a reply "
                                      "(\"id\" and \"error\" are the protocol's)",
                                      field));
          }
          if (!seen.insert(field).second) {
            return refuse("writes", fmt::format("'{}' is listed twice", field));
          }
        }
        for (const std::string& field : exec.fields) {
          if (field == "id" || field == "bytes_path" || field == "bytes_base64") {
            return refuse("fields",
                          fmt::format("'{}' is the protocol's own key; \"id\" is always "
                                      "sent, the bytes through `bytes_field`",
                                      field));
          }
        }
        if (exec.max_restart_backoff < exec.restart_backoff) {
          return refuse("max_restart_backoff_ms", "is less than restart_backoff_ms");
        }
        Result<std::unique_ptr<ExecStage>> stage = ExecStage::Create(std::move(exec));
        if (!stage.ok()) return stage.status();
        return std::unique_ptr<Stage>(std::move(stage).value());
      });
}

}  // namespace sluice
