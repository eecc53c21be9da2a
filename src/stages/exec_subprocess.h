// ExecSubprocess: one child process that the exec stage talks to in lines, on the
// child's standard input and output (src/stages/exec_stage.h).
//
// How it works: the child's stdin is one end of a Unix socketpair, written with
// send(MSG_NOSIGNAL), so that a child which closed its input gives EPIPE instead of
// a SIGPIPE that would kill the whole process; its stdout and stderr are pipes. The
// child runs in a process group of its own (posix_spawn), so that killing it also
// kills what a wrapper script (`sh -c ...`) started. A thread per child reads its
// stderr line by line and hands each line to a sink (the log), so that a chatty
// stderr never fills its pipe and blocks the child; it also keeps the last few lines,
// for the messages that tell why a child ended. Every descriptor is opened O_CLOEXEC:
// no child inherits another's pipes.
//
// Thread-safety: one thread at a time uses an ExecSubprocess (the stage's pool hands
// it to one thread); the stderr thread and StderrTail() are internally synchronised.
// The destructor ends the child: it closes its input, waits up to the grace given
// to Start() for it to exit, then kills its process group and reaps it. No zombie
// and no descriptor outlives the object.
#ifndef SLUICE_STAGES_EXEC_SUBPROCESS_H_
#define SLUICE_STAGES_EXEC_SUBPROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "sluice/status.h"

namespace sluice {

class ExecSubprocess {
 public:
  using Clock = std::chrono::steady_clock;
  // Receives each line the child writes on stderr, without its newline. Called on
  // the child's stderr thread.
  using LineSink = std::function<void(pid_t pid, std::string_view line)>;

  // Starts `argv` (argv[0] is looked up on PATH when it has no '/'). An error
  // (IoError) when the program cannot be executed at all (ENOENT, EACCES, ...).
  // `grace`: how long the destructor waits for the child to exit after closing its
  // input. `max_line_bytes`: the longest line NextLine() accepts.
  static Result<std::unique_ptr<ExecSubprocess>> Start(
      const std::vector<std::string>& argv, LineSink stderr_sink,
      std::chrono::milliseconds grace, std::size_t max_line_bytes);

  ~ExecSubprocess();
  ExecSubprocess(const ExecSubprocess&) = delete;
  ExecSubprocess& operator=(const ExecSubprocess&) = delete;

  pid_t pid() const { return pid_; }

  // Queues `data` for the child's stdin; it is written while NextLine() waits.
  void Send(std::string_view data) { pending_.append(data); }

  enum class Event {
    kLine,     // a whole line was read
    kTimeout,  // `deadline` passed first
    kClosed,   // the child closed its stdout (it exited or crashed)
    kTooLong,  // the line being read is longer than max_line_bytes
  };
  // Writes what is queued while it waits for the next line of the child's stdout;
  // the line goes to `*line`, without its newline. A child that closed its stdin
  // (EPIPE) is not an event of its own: what was queued is dropped and the wait goes
  // on for what it still writes, until it closes its stdout too.
  Event NextLine(Clock::time_point deadline, std::string* line);

  // True when the child has exited (it may still be a zombie: not reaped).
  bool Exited() const;

  // Kills the child's process group, reaps the child and stops the stderr thread.
  // Returns how the child ended: "exited with status 3", "killed by signal 11".
  // Waits up to `wait` first for a child that exits by itself (one that closed its
  // stdout), so that its own exit status is told rather than the kill's.
  std::string Terminate(std::chrono::milliseconds wait = std::chrono::milliseconds(0));

  // The last lines of the child's stderr (a few hundred bytes at most), joined by
  // " | ": for messages on why it ended. "" if it wrote none.
  std::string StderrTail() const;

 private:
  ExecSubprocess() = default;
  void WritePending();
  void ReadAvailable();
  void ReadStderr();
  bool WaitExit(std::chrono::milliseconds wait);

  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string how_ended_;  // set by Terminate()
  int in_fd_ = -1;         // our end of the child's stdin (a socket)
  int out_fd_ = -1;        // the child's stdout (read end)
  int err_fd_ = -1;        // the child's stderr (read end); read by stderr_thread_
  int stop_fd_ = -1;       // an eventfd: tells stderr_thread_ to drain and stop
  bool out_eof_ = false;
  std::string pending_;      // queued for stdin, not yet written
  std::string out_buffer_;   // read from stdout, not yet returned as lines
  std::size_t scanned_ = 0;  // bytes of out_buffer_ known to hold no newline
  std::size_t max_line_bytes_ = 0;
  std::chrono::milliseconds grace_{0};
  LineSink stderr_sink_;
  std::thread stderr_thread_;

  mutable std::mutex tail_mutex_;
  std::deque<std::string> tail_;  // guarded by tail_mutex_: the last stderr lines
};

}  // namespace sluice

#endif  // SLUICE_STAGES_EXEC_SUBPROCESS_H_
