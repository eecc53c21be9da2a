#include "tests/test_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <thread>

namespace sluice::testing {

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream file(path, std::ios::binary);
  file << contents;
  ASSERT_TRUE(file.good()) << "cannot write " << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

std::string SluiceBinary() { return SLUICE_BINARY; }
std::string SourceDir() { return SLUICE_SOURCE_DIR; }

namespace {

pid_t Spawn(const std::vector<std::string>& args, const std::string& out_path,
            const std::string& err_path, const std::string& netns = "") {
  std::vector<std::string> argv_strings = {SluiceBinary()};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0) _exit(127);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, STDIN_FILENO);
    // Start with default signal handling whatever the test runner set.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (!netns.empty()) {
      const int ns = open(("/var/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) _exit(126);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

void Collect(int status, CommandResult* result) {
  if (WIFEXITED(status)) {
    result->exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result->exit_code = -1;
    result->signal = WTERMSIG(status);
  }
}

}  // namespace

HeadlessBrowser::HeadlessBrowser(const TempDir& dir) : dir_(dir) {}

std::string HeadlessBrowser::Command(int virtual_ms) const {
  return "timeout 120 chromium --headless --no-sandbox --disable-gpu "
         "--disable-dev-shm-usage --no-first-run --user-data-dir=" +
         dir_.File("chromium") + " --virtual-time-budget=" + std::to_string(virtual_ms) + " ";
}

bool HeadlessBrowser::DumpDom(const std::string& url, std::string* dom, int virtual_ms) {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0) {
    ADD_FAILURE() << "chromium is missing (Debian package chromium, which "
                     "scripts/install-deps.sh installs)";
    return false;
  }
  const std::string out = dir_.File("dom.html");
  const std::string log = dir_.File("chromium.log");
  const std::string command =
      Command(virtual_ms) + "--dump-dom '" + url + "' > " + out + " 2>" + log;
  if (std::system(command.c_str()) != 0) {
    ADD_FAILURE() << command << ":\n" << ReadFile(log);
    return false;
  }
  *dom = ReadFile(out);
  return true;
}

bool HeadlessBrowser::Screenshot(const std::string& url, const std::string& name,
                                 const std::string& window, int virtual_ms) {
  const char* artifacts = std::getenv("SLUICE_TEST_ARTIFACTS");
  const std::filesystem::path dir(artifacts != nullptr ? artifacts : "test-artifacts");
  std::filesystem::create_directories(dir);
  const std::string shot = std::filesystem::absolute(dir / name).string();
  std::filesystem::remove(shot);
  const std::string log = dir_.File("chromium.log");
  const std::string command = Command(virtual_ms) + "--window-size=" + window +
                              " --screenshot=" + shot + " '" + url + "' 2>" + log;
  if (std::system(command.c_str()) != 0) {
    ADD_FAILURE() << command << ":\n" << ReadFile(log);
    return false;
  }
  const std::string png = ReadFile(shot);
  if (png.size() < 10000 || png.substr(1, 3) != "PNG") {
    ADD_FAILURE() << shot << ": not a PNG of a drawn page (" << png.size() << " bytes)";
    return false;
  }
  return true;
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

SluiceProcess::SluiceProcess(const std::vector<std::string>& args,
                             const std::string& log_dir, const std::string& netns) {
  static int counter = 0;
  ++counter;
  out_path_ = log_dir + "/process-" + std::to_string(counter) + ".out";
  err_path_ = log_dir + "/process-" + std::to_string(counter) + ".err";
  pid_ = Spawn(args, out_path_, err_path_, netns);
  EXPECT_GT(pid_, 0) << "fork failed";
}

SluiceProcess::~SluiceProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void SluiceProcess::Signal(int signal_number) {
  if (pid_ > 0) kill(pid_, signal_number);
}

bool SluiceProcess::Wait(std::chrono::milliseconds timeout, CommandResult* result) {
  if (pid_ <= 0) return true;
  int status = 0;
  bool exited = WaitFor(
      [&] {
        pid_t done = waitpid(pid_, &status, WNOHANG);
        return done == pid_;
      },
      timeout);
  if (!exited) return false;
  pid_ = -1;
  if (result != nullptr) {
    Collect(status, result);
    result->out = ReadFile(out_path_);
    result->err = ReadFile(err_path_);
  }
  return true;
}

CommandResult RunSluice(const std::vector<std::string>& args,
                        std::chrono::seconds timeout) {
  TempDir logs;
  SluiceProcess process(args, logs.path());
  CommandResult result;
  if (!process.Wait(timeout, &result)) {
    ADD_FAILURE() << "sluice did not finish within " << timeout.count() << " s";
    process.Signal(SIGKILL);
    process.Wait(std::chrono::seconds(10), &result);
  }
  return result;
}

void IngestRows(Store& store, const std::vector<ItemRow>& rows, std::uint32_t batch_size,
                const std::vector<std::string>& groups) {
  auto input = store.BeginInput({"urls.txt", rows.size(), "digest"});
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  for (std::size_t start = 0; start < rows.size(); start += batch_size) {
    const std::size_t count = std::min<std::size_t>(batch_size, rows.size() - start);
    ASSERT_TRUE(store
                    .AppendItems(input->input_id,
                                 std::span<const ItemRow>(rows).subspan(start, count), {},
                                 start + count, batch_size, groups)
                    .ok());
  }
  ASSERT_TRUE(store.FinishInput(input->input_id, rows.size()).ok());
}

std::vector<nlohmann::json> ExportRows(const std::string& workdir) {
  CommandResult result = RunSluice({"export", "--workdir", workdir});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::vector<nlohmann::json> rows;
  std::istringstream lines(result.out);
  std::string line;
  while (std::getline(lines, line)) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

}  // namespace sluice::testing
