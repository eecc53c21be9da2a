// A throwaway PostgreSQL server for tests, started by the test itself on loopback.
//
// How it works: the first server of a machine initialises a template data directory
// once (initdb, trust authentication for the superuser "sluice", UTF-8, C locale),
// under a file lock, in $TMPDIR/sluice-pg-template-<version>; each server copies it
// into its own temporary directory (cp -a: ~0.1 s where initdb takes ~1.5 s) and
// starts with pg_ctl on a free port of 127.0.0.1, its socket in that directory,
// fsync off (a test server need not survive a power cut, only its own crash: commits
// stay synchronous, so a server killed by Stop() keeps every committed transaction). PostgreSQL refuses to run
// as root: when the tests run as root (CI does), every command runs as the system
// user "postgres" that Debian's postgresql package creates (runuser), and the
// directories are handed to it. The server is stopped (immediate mode) and its
// directory removed when the object is destroyed; a test process that died without
// that (a crash, a kill) leaves its server behind, so each new server first stops
// and removes the servers whose owner process (owner.pid in their directory) is gone.
//
// Test-only, header-only; not thread-safe.
#ifndef SLUICE_TESTS_SUPPORT_POSTGRES_SERVER_H_
#define SLUICE_TESTS_SUPPORT_POSTGRES_SERVER_H_

#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "sluice/status.h"

namespace sluice::testing {

inline constexpr char kPostgresBin[] = "/usr/lib/postgresql/15/bin";

struct PostgresServerOptions {
  // fsync and full-page writes on, as a production server runs (for benchmarks);
  // off by default, which is faster and enough for tests of crashes of the server
  // process (not of the machine).
  bool durable = false;
  // Where it listens (listen_addresses), and a network (CIDR) whose clients it
  // trusts besides loopback: for workers in other network namespaces.
  std::string listen_addresses = "127.0.0.1";
  std::string trusted_network;
};

class PostgresServer {
 public:
  // Starts a server; the error says what failed (and where its log is).
  static Result<std::unique_ptr<PostgresServer>> Start(PostgresServerOptions options = {}) {
    std::unique_ptr<PostgresServer> server(new PostgresServer());
    server->options_ = options;
    Status status = server->Init();
    if (!status.ok()) return status;
    return server;
  }

  ~PostgresServer() {
    if (running_) {
      Status ignored = Stop();  // nothing to do about a server that will not stop
      (void)ignored.ok();
    }
    std::error_code error;
    std::filesystem::remove_all(dir_, error);
  }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }

  // A libpq URL for `database` as the superuser "sluice".
  std::string Url(const std::string& database = "postgres") const {
    return "postgresql://sluice@127.0.0.1:" + std::to_string(port_) + "/" + database;
  }

  // Creates an empty database of a new name; returns its URL.
  Result<std::string> CreateDatabase() {
    const std::string name = "test_" + std::to_string(next_database_++);
    SLUICE_RETURN_IF_ERROR(Run({std::string(kPostgresBin) + "/createdb", "-h", "127.0.0.1",
                                "-p", std::to_string(port_), "-U", "sluice", name}));
    return Url(name);
  }

  // Stops the server (immediate mode: as a crash would); Restart() starts it again on
  // the same port with the same data.
  Status Stop() {
    running_ = false;
    return Run({std::string(kPostgresBin) + "/pg_ctl", "-D", data_, "-m", "immediate", "-w",
                "stop"});
  }
  Status Restart() {
    SLUICE_RETURN_IF_ERROR(StartServer());
    return Status::Ok();
  }

  const std::string& log_path() const { return log_; }
  const std::string& data_dir() const { return data_; }

 private:
  PostgresServer() = default;

  static bool RunningAsRoot() { return geteuid() == 0; }

  // Runs argv (as the postgres user when we are root) and waits; output goes to log_.
  Status Run(std::vector<std::string> argv) const {
    if (RunningAsRoot()) argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
    std::vector<char*> args;
    for (std::string& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    const pid_t pid = fork();
    if (pid < 0) return IoError(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      const int out = open(log_.empty() ? "/dev/null" : log_.c_str(),
                           O_WRONLY | O_CREAT | O_APPEND, 0666);
      if (out >= 0) {
        dup2(out, 1);
        dup2(out, 2);
      }
      execvp(args[0], args.data());
      _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return IoError("`" + argv[RunningAsRoot() ? 4 : 0] + "` failed (exit status " +
                     std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
                     "); see " + log_);
    }
    return Status::Ok();
  }

  // Hands `path` to the postgres user when we are root.
  static Status GiveToPostgres(const std::string& path) {
    if (!RunningAsRoot()) return Status::Ok();
    const passwd* user = getpwnam("postgres");
    if (user == nullptr) {
      return NotFound("no user \"postgres\" (install postgresql-15: scripts/install-deps.sh)");
    }
    if (chown(path.c_str(), user->pw_uid, user->pw_gid) != 0) {
      return IoError("chown " + path + ": " + std::strerror(errno));
    }
    return Status::Ok();
  }

  static Result<int> FreePort() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return IoError(std::string("socket: ") + std::strerror(errno));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    close(fd);
    if (!ok) return IoError(std::string("bind 127.0.0.1:0: ") + std::strerror(errno));
    return static_cast<int>(ntohs(address.sin_port));
  }

  // The template data directory, made once per machine.
  Result<std::string> Template() {
    const std::string root = std::filesystem::temp_directory_path() / "sluice-pg-template-15";
    const std::string lock_path = root + ".lock";
    const int lock = open(lock_path.c_str(), O_RDWR | O_CREAT, 0666);
    if (lock < 0) return IoError("open " + lock_path + ": " + std::strerror(errno));
    while (flock(lock, LOCK_EX) != 0 && errno == EINTR) {
    }
    Status status = Status::Ok();
    const std::string data = root + "/data";
    if (!std::filesystem::exists(data + "/PG_VERSION")) {
      std::error_code error;
      std::filesystem::remove_all(root, error);
      std::filesystem::create_directories(root, error);
      status = GiveToPostgres(root);
      if (status.ok()) {
        status = Run({std::string(kPostgresBin) + "/initdb", "-D", data + ".new", "-A",
                      "trust", "-U", "sluice", "-E", "UTF8", "--locale=C", "--no-sync"});
      }
      if (status.ok()) std::filesystem::rename(data + ".new", data, error);
      if (status.ok() && error) status = IoError("rename " + data + ": " + error.message());
    }
    close(lock);
    if (!status.ok()) return status;
    return data;
  }

  // Stops the servers of test processes that are gone.
  void StopOrphans() {
    std::error_code error;
    for (const auto& entry :
         std::filesystem::directory_iterator(std::filesystem::temp_directory_path(), error)) {
      const std::string name = entry.path().filename().string();
      if (!name.starts_with("sluice-pg-") || name.starts_with("sluice-pg-template")) continue;
      std::ifstream owner_file(entry.path() / "owner.pid");
      pid_t owner = 0;
      if (!(owner_file >> owner) || owner <= 0) continue;
      if (kill(owner, 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to judge)
      const std::string data = (entry.path() / "data").string();
      if (std::filesystem::exists(data + "/postmaster.pid")) {
        Status ignored = Run({std::string(kPostgresBin) + "/pg_ctl", "-D", data, "-m",
                              "immediate", "-w", "stop"});
        (void)ignored.ok();  // a server that is already gone leaves only its files
      }
      std::filesystem::remove_all(entry.path(), error);
    }
  }

  Status Init() {
    if (!std::filesystem::exists(std::string(kPostgresBin) + "/pg_ctl")) {
      return NotFound(std::string(kPostgresBin) +
                      "/pg_ctl is missing (install postgresql-15: scripts/install-deps.sh)");
    }
    StopOrphans();
    std::string pattern = std::filesystem::temp_directory_path() / "sluice-pg-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      return IoError("mkdtemp " + pattern + ": " + std::strerror(errno));
    }
    dir_ = pattern;
    log_ = dir_ + "/server.log";
    std::ofstream(dir_ + "/owner.pid") << getpid() << "\n";
    SLUICE_RETURN_IF_ERROR(GiveToPostgres(dir_));
    SLUICE_ASSIGN_OR_RETURN(std::string template_data, Template());
    data_ = dir_ + "/data";
    SLUICE_RETURN_IF_ERROR(Run({"cp", "-a", template_data, data_}));
    SLUICE_ASSIGN_OR_RETURN(port_, FreePort());
    return StartServer();
  }

  Status StartServer() {
    if (!options_.trusted_network.empty()) {
      std::ofstream(data_ + "/pg_hba.conf", std::ios::app)
          << "host all all " << options_.trusted_network << " trust\n";
    }
    const std::string options = "-c listen_addresses=" + options_.listen_addresses + " -p " +
                                std::to_string(port_) +
                                " -k " + dir_ +
                                (options_.durable ? "" : " -c fsync=off -c full_page_writes=off") +
                                " -c max_connections=200";
    SLUICE_RETURN_IF_ERROR(Run({std::string(kPostgresBin) + "/pg_ctl", "-D", data_, "-l",
                                dir_ + "/postgres.log", "-o", options, "-w", "-t", "60",
                                "start"}));
    running_ = true;
    return Status::Ok();
  }

  PostgresServerOptions options_;
  std::string dir_;
  std::string data_;
  std::string log_;
  int port_ = 0;
  bool running_ = false;
  int next_database_ = 1;
};

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_SUPPORT_POSTGRES_SERVER_H_
