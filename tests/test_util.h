// Support for integration tests: temporary directories, files, and running the real
// `sluice` binary as a subprocess with a deadline.
#ifndef SLUICE_TESTS_TEST_UTIL_H_
#define SLUICE_TESTS_TEST_UTIL_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sluice/store.h"
#include "tests/support/temp_dir.h"

namespace sluice::testing {

void WriteFile(const std::string& path, const std::string& contents);
std::string ReadFile(const std::string& path);

// The built sluice binary and the source tree.
std::string SluiceBinary();
std::string SourceDir();

struct CommandResult {
  int exit_code = -1;  // -1 if killed by a signal
  int signal = 0;      // the signal that ended it, if any
  std::string out;     // standard output
  std::string err;     // standard error
};

// Runs `sluice args...` to completion; fails the test (and kills the process) if it
// runs past `timeout`.
CommandResult RunSluice(const std::vector<std::string>& args,
                        std::chrono::seconds timeout = std::chrono::seconds(120));

// A sluice process running in the background; output goes to files in `log_dir`.
class SluiceProcess {
 public:
  // `netns`: the name of a network namespace (`ip netns`) to run it in; "" = ours.
  SluiceProcess(const std::vector<std::string>& args, const std::string& log_dir,
                const std::string& netns = "");
  ~SluiceProcess();  // kills it if still running

  pid_t pid() const { return pid_; }
  // Where its standard error goes (readable while it runs).
  const std::string& err_path() const { return err_path_; }
  void Signal(int signal_number);
  // Waits for exit; returns false if it is still running at the deadline.
  bool Wait(std::chrono::milliseconds timeout, CommandResult* result);

 private:
  pid_t pid_ = -1;
  std::string out_path_;
  std::string err_path_;
};

// Ingests `rows` into `store` as one input, in batches of `batch_size`, for
// `groups`, as `sluice ingest` would.
void IngestRows(Store& store, const std::vector<ItemRow>& rows, std::uint32_t batch_size,
                const std::vector<std::string>& groups = {"main"});

// `sluice export --workdir WORKDIR` (JSONL), one parsed object per item, in id order.
std::vector<nlohmann::json> ExportRows(const std::string& workdir);

// A store clock that moves only when the test says (lease expiry follows it).
class ManualStoreClock final : public StoreClock {
 public:
  std::int64_t NowMs() const override { return now_ms_.load(); }
  void Advance(std::int64_t ms) { now_ms_ += ms; }

 private:
  std::atomic<std::int64_t> now_ms_{1'800'000'000'000};
};

// Debian's chromium, headless, for pages the project serves or writes. Each call
// runs a fresh browser with its profile in `dir`; false (and the test's failure,
// with chromium's log) when it is missing or fails.
class HeadlessBrowser {
 public:
  explicit HeadlessBrowser(const TempDir& dir);
  // The DOM of `url` after `virtual_ms` of virtual time (the page's timers run as
  // fast as its answers come: the test waits for events, not for the clock).
  bool DumpDom(const std::string& url, std::string* dom, int virtual_ms = 5000);
  // A PNG of `url` in test-artifacts/ (or $SLUICE_TEST_ARTIFACTS) named `name`.
  bool Screenshot(const std::string& url, const std::string& name,
                  const std::string& window = "1280,1000", int virtual_ms = 5000);

 private:
  std::string Command(int virtual_ms) const;
  const TempDir& dir_;
};

// Polls `condition` every few milliseconds until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_TEST_UTIL_H_
