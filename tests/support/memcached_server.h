// A throwaway memcached server for tests, started by the test itself on loopback.
//
// How it works: the server runs in the foreground as a child process, on a free
// port of 127.0.0.1 (TCP only), with a small memory limit; Start() returns once the
// port accepts connections. memcached refuses to run as root without -u: when the
// tests run as root (CI does), it runs as "nobody". The child asks the kernel to
// kill it when the thread that started it ends (PR_SET_PDEATHSIG), so a test that
// dies leaves no server behind. Kill() is kill -9, as a crash would; the destructor
// kills the server too, and removes its directory (its log).
//
// Test-only, header-only; not thread-safe. Start it from the thread that uses it
// (the test's own).
#ifndef SLUICE_TESTS_SUPPORT_MEMCACHED_SERVER_H_
#define SLUICE_TESTS_SUPPORT_MEMCACHED_SERVER_H_

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sluice/status.h"

namespace sluice::testing {

inline constexpr char kMemcachedBinary[] = "/usr/bin/memcached";

struct MemcachedServerOptions {
  int memory_mib = 64;             // -m: the server's memory for items
  std::string max_item_size = "";  // -I (e.g. "4m"); "" = memcached's default, 1 MiB
};

class MemcachedServer {
 public:
  static Result<std::unique_ptr<MemcachedServer>> Start(
      MemcachedServerOptions options = {}) {
    std::unique_ptr<MemcachedServer> server(new MemcachedServer());
    Status status = server->Init(options);
    if (!status.ok()) return status;
    return server;
  }

  ~MemcachedServer() {
    Kill();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  MemcachedServer(const MemcachedServer&) = delete;
  MemcachedServer& operator=(const MemcachedServer&) = delete;

  int port() const { return port_; }
  // "127.0.0.1:PORT", as the cache's options name a server.
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& log_path() const { return log_; }

  // Kills the server (SIGKILL) and reaps it. Idempotent.
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  // A free port of 127.0.0.1 (nothing listens on it once this returns).
  static Result<int> FreePort() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return IoError(std::string("socket: ") + std::strerror(errno));
    sockaddr_in address = Loopback(0);
    socklen_t length = sizeof address;
    const bool ok =
        bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    close(fd);
    if (!ok) return IoError(std::string("bind 127.0.0.1:0: ") + std::strerror(errno));
    return static_cast<int>(ntohs(address.sin_port));
  }

 private:
  MemcachedServer() = default;

  static sockaddr_in Loopback(int port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    return address;
  }

  bool Accepts() const {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in address = Loopback(port_);
    const bool ok =
        connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    close(fd);
    return ok;
  }

  Status Init(const MemcachedServerOptions& options) {
    if (access(kMemcachedBinary, X_OK) != 0) {
      return NotFound(std::string(kMemcachedBinary) +
                      " is missing (install memcached: scripts/install-deps.sh)");
    }
    std::string pattern =
        std::filesystem::temp_directory_path() / "sluice-memcached-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      return IoError("mkdtemp " + pattern + ": " + std::strerror(errno));
    }
    dir_ = pattern;
    log_ = dir_ + "/memcached.log";
    SLUICE_ASSIGN_OR_RETURN(port_, FreePort());
    std::vector<std::string> argv = {kMemcachedBinary,
                                     "-l",
                                     "127.0.0.1",
                                     "-p",
                                     std::to_string(port_),
                                     "-U",
                                     "0",
                                     "-m",
                                     std::to_string(options.memory_mib),
                                     "-c",
                                     "1024"};
    if (!options.max_item_size.empty())
      argv.insert(argv.end(), {"-I", options.max_item_size});
    if (geteuid() == 0) argv.insert(argv.end(), {"-u", "nobody"});
    std::vector<char*> args;
    for (std::string& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) return IoError(std::string("fork: ") + std::strerror(errno));
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);  // the parent died before the prctl
      const int out = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0666);
      if (out >= 0) {
        dup2(out, 1);
        dup2(out, 2);
      }
      execv(args[0], args.data());
      _exit(127);
    }
    // Wait for the port, or for the server's exit (a port taken meanwhile, ...).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!Accepts()) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return IoError("memcached exited at start; see " + log_);
      }
      if (std::chrono::steady_clock::now() > deadline) {
        Kill();
        return IoError("memcached did not listen within 60 s; see " + log_);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return Status::Ok();
  }

  std::string dir_;
  std::string log_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_SUPPORT_MEMCACHED_SERVER_H_
