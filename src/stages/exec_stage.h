// exec: a stage written in any language, run as a long-lived subprocess that reads
// one JSON object per line on its stdin and answers one per line on its stdout
// (docs/exec.md).
//
// Request, one line per record:
//   {"id": 42, "url": "https://...", <each of `fields` the record has>,
//    "bytes_path": "/tmp/sluice-exec-XXXX/42-7"  or  "bytes_base64": "..."}
// Reply, one line per request, in the order of the requests:
//   {"id": 42, <field>: <value>, ...}      sets those fields (each must be in `writes`)
//   {"id": 42, "error": "why"}             fails the record (kStage, with that text)
//
// Reads:   `bytes_field` (Bytes), when set; `fields` (fields or input columns)
// Writes:  `writes`: strings, integers, numbers, booleans; lists and objects as JSON
// Fails:   kStage    an error reply; a reply that is not a JSON object with the
//                    record's id, or sets a field not in `writes`; the subprocess
//                    crashed (closed its stdout) before answering; no bytes in
//                    `bytes_field`
//          kTimeout  no reply within `timeout_ms`
//
// How it works: the stage keeps a free list of subprocesses. A thread processing a
// chunk takes one (or starts one: so there are at most as many as threads that ran
// the stage at the same time) and gives it back after the chunk. Records go in
// groups of `batch`: the group's requests are written while the replies are read
// (both at once, so that neither pipe can fill up and block the other side), and the
// group is done when every record has its reply. A subprocess that crashes, hangs
// past the timeout or answers garbage fails the record it was answering; it is
// killed (its process group) and reaped, and a new one is started after a backoff
// that doubles with each failure in a row (from `restart_backoff_ms` up to
// `max_restart_backoff_ms`), which the records of the group that had no answer yet
// are sent to again. The factory starts the first subprocess: a command that cannot
// be executed, or exits within `startup_ms` without a request, fails the pipeline
// when it loads instead of failing every item. Each line a subprocess writes on
// stderr goes to the log.
//
// Thread-safety: Process() may run concurrently on different chunks; Counters() from
// any thread.
#ifndef SLUICE_STAGES_EXEC_STAGE_H_
#define SLUICE_STAGES_EXEC_STAGE_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/record.h"
#include "sluice/stage.h"
#include "sluice/status.h"
#include "src/stages/exec_subprocess.h"

namespace sluice {

enum class ExecBytesAs : std::uint8_t {
  kPath,    // "path": written to a temporary file whose path is sent as "bytes_path"
  kBase64,  // "base64": sent in the request as "bytes_base64"
};

struct ExecOptions {
  std::vector<std::string> command;  // "command": the program and its arguments; required
  std::chrono::milliseconds timeout{10000};  // "timeout_ms": the longest wait for a reply
  // "fields": fields (or input columns) sent with each request besides "id"; a record
  // without one leaves it out.
  std::vector<std::string> fields = {"url"};
  std::string bytes_field;  // "bytes_field": a Bytes field sent too; "" = none
  ExecBytesAs bytes_as = ExecBytesAs::kPath;  // "bytes_as": path or base64
  std::size_t batch = 1;  // "batch": requests written before their replies are read
  std::vector<std::string> writes;  // "writes": the fields a reply may set
  // "restart_backoff_ms": the wait before the first restart after a failure; it
  // doubles with each failure in a row.
  std::chrono::milliseconds restart_backoff{100};
  // "max_restart_backoff_ms": the longest wait before a restart.
  std::chrono::milliseconds max_restart_backoff{10000};
  // "startup_ms": how long the factory watches its first subprocess for an early
  // exit (a script that fails at once); 0 = only check that it could be executed.
  std::chrono::milliseconds startup{200};
  // "grace_ms": when the stage is destroyed, how long a subprocess has to exit after
  // its stdin is closed, before it is killed.
  std::chrono::milliseconds grace{1000};
  // "max_reply_bytes": a longer reply line is garbage.
  std::size_t max_reply_bytes = 64 << 20;
  // "temp_dir": where the per-stage directory for bytes files is made; "" = $TMPDIR
  // or /tmp.
  std::string temp_dir;
  std::string where = "exec";  // the stage's YAML path, for messages
  StageLog log;                // where stderr lines go; empty = standard error
};

// Registers "exec". Its subprocesses' stderr lines go to `log` (standard error when
// empty). Fails if the name is registered already.
Status RegisterExecStage(StageRegistry& registry, StageLog log = {});

class ExecStage final : public CpuStage {
 public:
  // Starts the first subprocess (see above): an error if it cannot run, or exits
  // within options.startup. REQUIRES: options.command is not empty.
  static Result<std::unique_ptr<ExecStage>> Create(ExecOptions options);
  ~ExecStage() override;

  void Process(std::span<Record> records) override;
  StageFields Fields() const override;
  // exec_restarts_total, exec_crashes_total, exec_timeouts_total,
  // exec_bad_replies_total, exec_error_replies_total.
  std::vector<std::pair<std::string, std::uint64_t>> Counters() const override;

  const ExecOptions& options() const { return options_; }

 private:
  struct Request;
  explicit ExecStage(ExecOptions options, std::string temp_dir)
      : options_(std::move(options)), temp_dir_(std::move(temp_dir)) {}

  Result<std::unique_ptr<ExecSubprocess>> Spawn() const;
  // An idle subprocess or a new one; when `replacing` one that failed, or when the
  // last ones failed, a new one after the backoff the failures in a row ask for.
  Result<std::unique_ptr<ExecSubprocess>> Acquire(bool replacing);
  void Release(std::unique_ptr<ExecSubprocess> child);
  // Kills `child`, after a failure; the next Acquire() waits a backoff.
  std::string Discard(std::unique_ptr<ExecSubprocess>& child,
                      std::chrono::milliseconds wait);

  // The request line for `record`, or false (and the record failed) if it cannot be
  // made.
  bool MakeRequest(Record& record, Request& request);
  // Applies a reply line to `record`. Returns "" if the line was a proper reply (ok
  // or error), else what is wrong with it (the protocol is broken).
  std::string ApplyReply(std::string_view line, Record& record);

  const ExecOptions options_;
  const std::string temp_dir_;  // per-stage directory for bytes files; "" = none
  std::atomic<std::uint64_t> next_file_{0};

  std::mutex mutex_;
  std::vector<std::unique_ptr<ExecSubprocess>> idle_;  // guarded by mutex_
  std::atomic<std::uint32_t> failures_in_a_row_{0};

  std::atomic<std::uint64_t> restarts_{0};
  std::atomic<std::uint64_t> crashes_{0};
  std::atomic<std::uint64_t> timeouts_{0};
  std::atomic<std::uint64_t> bad_replies_{0};
  std::atomic<std::uint64_t> error_replies_{0};
};

}  // namespace sluice

#endif  // SLUICE_STAGES_EXEC_STAGE_H_
