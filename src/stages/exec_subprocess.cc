#include "src/stages/exec_subprocess.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

extern char** environ;

namespace sluice {
namespace {

constexpr std::size_t kTailLines = 5;
constexpr std::size_t kTailLineBytes = 200;
constexpr std::size_t kMaxStderrLineBytes = 4096;  // longer lines are cut in pieces

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

void SetNonBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

std::string Describe(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return fmt::format("killed by signal {} ({})", WTERMSIG(status),
                       ::strsignal(WTERMSIG(status)));
  }
  return "ended";
}

// The file actions and attributes of a spawn, released however Start() returns.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

}  // namespace

Result<std::unique_ptr<ExecSubprocess>> ExecSubprocess::Start(
    const std::vector<std::string>& argv, LineSink stderr_sink,
    std::chrono::milliseconds grace, std::size_t max_line_bytes) {
  if (argv.empty()) return InvalidArgument("empty command");
  std::unique_ptr<ExecSubprocess> child(new ExecSubprocess());
  child->grace_ = grace;
  child->max_line_bytes_ = max_line_bytes;
  child->stderr_sink_ = std::move(stderr_sink);

  // Ours and the child's ends; the child's are closed here once it has them.
  int in[2] = {-1, -1};
  int out[2] = {-1, -1};
  int err[2] = {-1, -1};
  auto close_all = [&] {
    for (int* fd : {&in[0], &in[1], &out[0], &out[1], &err[0], &err[1]}) CloseFd(*fd);
  };
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 ||
      ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    const int error = errno;
    close_all();
    return IoError(
        fmt::format("cannot make the pipes for {}: {}", argv[0], std::strerror(error)));
  }
  // Our end of stdin only writes, the child's only reads.
  ::shutdown(in[0], SHUT_RD);
  ::shutdown(in[1], SHUT_WR);

  SpawnSetup setup;
  // dup2 clears FD_CLOEXEC on the copy: the child keeps exactly fds 0, 1 and 2.
  posix_spawn_file_actions_adddup2(&setup.actions, in[1], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&setup.actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&setup.actions, err[1], STDERR_FILENO);
  // Its own process group, an empty signal mask (our threads may block signals)
  // and default actions for the signals a host program often ignores.
  sigset_t no_signals;
  sigemptyset(&no_signals);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int signal_number : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) {
    sigaddset(&defaults, signal_number);
  }
  posix_spawnattr_setflags(&setup.attributes, POSIX_SPAWN_SETPGROUP |
                                                  POSIX_SPAWN_SETSIGMASK |
                                                  POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&setup.attributes, 0);
  posix_spawnattr_setsigmask(&setup.attributes, &no_signals);
  posix_spawnattr_setsigdefault(&setup.attributes, &defaults);

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  // glibc's posix_spawn reports a failed exec (ENOENT, EACCES, ENOEXEC) as its
  // result, so a command that cannot run is known here, not by a child exiting.
  pid_t pid = -1;
  const int spawned = ::posix_spawnp(&pid, args[0], &setup.actions, &setup.attributes,
                                     args.data(), environ);
  if (spawned != 0) {
    close_all();
    return IoError(fmt::format("cannot run {}: {}", argv[0], std::strerror(spawned)));
  }
  child->pid_ = pid;
  CloseFd(in[1]);
  CloseFd(out[1]);
  CloseFd(err[1]);
  child->in_fd_ = in[0];
  child->out_fd_ = out[0];
  child->err_fd_ = err[0];
  SetNonBlocking(child->in_fd_);
  SetNonBlocking(child->out_fd_);
  SetNonBlocking(child->err_fd_);
  child->stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (child->stop_fd_ < 0) {
    const int error = errno;
    child->Terminate();
    return IoError(fmt::format("cannot make an eventfd: {}", std::strerror(error)));
  }
  ExecSubprocess* raw = child.get();
  child->stderr_thread_ = std::thread([raw] { raw->ReadStderr(); });
  return child;
}

ExecSubprocess::~ExecSubprocess() {
  if (!reaped_ && pid_ > 0) {
    // Closing its input is how a well-behaved child learns to finish.
    CloseFd(in_fd_);
    Terminate(grace_);
  }
  CloseFd(in_fd_);
  CloseFd(out_fd_);
  CloseFd(err_fd_);
  CloseFd(stop_fd_);
}

ExecSubprocess::Event ExecSubprocess::NextLine(Clock::time_point deadline,
                                               std::string* line) {
  for (;;) {
    const std::size_t newline = out_buffer_.find('\n', scanned_);
    if (newline != std::string::npos) {
      line->assign(out_buffer_, 0, newline);
      out_buffer_.erase(0, newline + 1);
      scanned_ = 0;
      return Event::kLine;
    }
    scanned_ = out_buffer_.size();
    if (out_buffer_.size() > max_line_bytes_) return Event::kTooLong;
    if (out_eof_) return Event::kClosed;
    const Clock::time_point now = Clock::now();
    if (now >= deadline) return Event::kTimeout;
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    std::array<pollfd, 2> fds = {pollfd{out_fd_, POLLIN, 0}, pollfd{in_fd_, POLLOUT, 0}};
    const nfds_t count = !pending_.empty() && in_fd_ >= 0 ? 2 : 1;
    const int ready =
        ::poll(fds.data(), count,
               static_cast<int>(std::min<std::int64_t>(wait.count(), 60'000)));
    if (ready < 0 && errno != EINTR) {
      out_eof_ = true;  // cannot wait on it: as good as closed
      continue;
    }
    if (ready <= 0) continue;
    if (count == 2 && fds[1].revents != 0) WritePending();
    if (fds[0].revents != 0) ReadAvailable();
  }
}

void ExecSubprocess::WritePending() {
  while (!pending_.empty()) {
    const ssize_t sent =
        ::send(in_fd_, pending_.data(), pending_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0) {
      pending_.erase(0, static_cast<std::size_t>(sent));
      continue;
    }
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    // EPIPE, ECONNRESET: the child closed its stdin. What it still writes is read.
    pending_.clear();
    CloseFd(in_fd_);
    return;
  }
}

void ExecSubprocess::ReadAvailable() {
  std::array<char, 65536> buffer;
  for (;;) {
    const ssize_t got = ::read(out_fd_, buffer.data(), buffer.size());
    if (got > 0) {
      out_buffer_.append(buffer.data(), static_cast<std::size_t>(got));
      if (out_buffer_.size() > max_line_bytes_ + buffer.size()) return;
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    out_eof_ = true;  // 0: end of file; an error: nothing more will come
    return;
  }
}

void ExecSubprocess::ReadStderr() {
  std::string partial;
  std::array<char, 4096> buffer;
  auto emit = [this](std::string_view text) {
    if (stderr_sink_) stderr_sink_(pid_, text);
    std::lock_guard<std::mutex> lock(tail_mutex_);
    tail_.emplace_back(text.substr(0, kTailLineBytes));
    if (tail_.size() > kTailLines) tail_.pop_front();
  };
  auto split = [&] {
    std::size_t start = 0;
    for (;;) {
      const std::size_t newline = partial.find('\n', start);
      if (newline == std::string::npos) break;
      emit(std::string_view(partial).substr(start, newline - start));
      start = newline + 1;
    }
    partial.erase(0, start);
    while (partial.size() > kMaxStderrLineBytes) {
      emit(std::string_view(partial).substr(0, kMaxStderrLineBytes));
      partial.erase(0, kMaxStderrLineBytes);
    }
  };
  bool stopping = false;
  for (;;) {
    // Once told to stop, only what is there already is read.
    std::array<pollfd, 2> fds = {pollfd{err_fd_, POLLIN, 0}, pollfd{stop_fd_, POLLIN, 0}};
    const int ready = ::poll(fds.data(), stopping ? 1 : 2, stopping ? 0 : -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    if (!stopping && fds[1].revents != 0) stopping = true;
    if (fds[0].revents == 0) continue;
    const ssize_t got = ::read(err_fd_, buffer.data(), buffer.size());
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) break;
    partial.append(buffer.data(), static_cast<std::size_t>(got));
    split();
  }
  if (!partial.empty()) emit(partial);
}

bool ExecSubprocess::Exited() const {
  if (reaped_) return true;
  siginfo_t info;
  std::memset(&info, 0, sizeof(info));
  // WNOWAIT: the child stays a zombie, so that its pid (and process group) cannot be
  // reused before Terminate() kills the group.
  return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) ==
             0 &&
         info.si_pid == pid_;
}

bool ExecSubprocess::WaitExit(std::chrono::milliseconds wait) {
  const Clock::time_point deadline = Clock::now() + wait;
  auto pause = std::chrono::microseconds(200);
  for (;;) {
    if (Exited()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(20));
  }
}

std::string ExecSubprocess::Terminate(std::chrono::milliseconds wait) {
  if (reaped_) return how_ended_;
  if (wait.count() > 0) WaitExit(wait);
  // The whole group: a wrapper's children too. The leader, alive or a zombie, still
  // holds the group's id.
  ::kill(-pid_, SIGKILL);
  int status = 0;
  pid_t waited = -1;
  do {
    waited = ::waitpid(pid_, &status, 0);
  } while (waited < 0 && errno == EINTR);
  reaped_ = true;
  how_ended_ = waited == pid_ ? Describe(status) : "ended (not reaped)";
  if (stderr_thread_.joinable()) {
    const std::uint64_t one = 1;
    if (::write(stop_fd_, &one, sizeof(one)) < 0) {
      // An eventfd write fails only on overflow; the thread is being stopped anyway.
    }
    stderr_thread_.join();
  }
  CloseFd(in_fd_);
  return how_ended_;
}

std::string ExecSubprocess::StderrTail() const {
  std::lock_guard<std::mutex> lock(tail_mutex_);
  std::string joined;
  for (const std::string& line : tail_) {
    if (!joined.empty()) joined += " | ";
    joined += line;
  }
  return joined;
}

}  // namespace sluice
