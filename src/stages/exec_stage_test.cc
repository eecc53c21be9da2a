// The exec stage against real subprocesses: a small Python script written by each
// test, which misbehaves on purpose on item 3 in the mode it is given (crash, hang,
// garbage, ...), and the shipped examples in examples/exec/.
#include "src/stages/exec_stage.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "src/core/yaml_options.h"
#include "sluice/pipeline.h"
#include "tests/support/temp_dir.h"

namespace sluice::testing {
namespace {

using std::chrono::milliseconds;

constexpr char kPython[] = "/usr/bin/python3";

// Answers each request with its id, url, pid and bytes; on item 3 it does what its
// mode says.
constexpr char kScript[] = R"PY(
import base64, json, os, sys, time
mode = sys.argv[1] if len(sys.argv) > 1 else "echo"
if mode == "close_stdin":
    os.close(0)
    time.sleep(0.2)
    sys.exit(0)
for line in sys.stdin:
    request = json.loads(line)
    i = request["id"]
    reply = {"id": i, "echo_url": request.get("url"), "pid": os.getpid()}
    if "caption" in request:
        reply["caption"] = request["caption"]
    data = None
    if "bytes_path" in request:
        reply["path"] = request["bytes_path"]
        with open(request["bytes_path"], "rb") as f:
            data = f.read()
    if "bytes_base64" in request:
        data = base64.b64decode(request["bytes_base64"])
    if data is not None:
        reply["size"] = len(data)
        reply["sum"] = sum(data)
        if data.isascii():
            reply["text"] = data.decode("ascii")
    if mode == "stderr":
        sys.stderr.write("note %d\n" % i)
        sys.stderr.write("x" * 100000 + "\n")  # more than a pipe holds
        sys.stderr.flush()
    if i == 3:
        if mode == "crash":
            sys.stderr.write("dying on 3\n")
            sys.stderr.flush()
            sys.exit(7)
        if mode == "hang":
            time.sleep(3600)
        if mode == "garbage":
            reply = "this is not json"
        if mode == "wrong_id":
            reply["id"] = 999
        if mode == "error":
            reply = {"id": i, "error": "item 3 is cursed"}
        if mode == "undeclared":
            reply["surprise"] = 1
    if mode == "exit_after_first" and i == 1:
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
        sys.stderr.write("leaving after 1\n")
        sys.exit(5)
    if isinstance(reply, str):
        sys.stdout.write(reply + "\n")
    else:
        sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
)PY";

class ExecStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " is missing";
    script_ = dir_.Write("stage.py", kScript);
  }

  // Options running the test script in `mode`, quick to restart.
  ExecOptions Options(const std::string& mode = "echo") {
    ExecOptions options;
    options.command = {kPython, script_, mode};
    options.writes = {"echo_url", "pid", "path", "size", "sum", "text", "caption"};
    options.restart_backoff = milliseconds(1);
    options.max_restart_backoff = milliseconds(20);
    options.startup = milliseconds(0);
    options.temp_dir = dir_.path();
    options.log = [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(log_mutex_);
      log_.emplace_back(line);
      log_changed_.notify_all();
    };
    return options;
  }

  std::unique_ptr<ExecStage> Make(ExecOptions options) {
    Result<std::unique_ptr<ExecStage>> stage = ExecStage::Create(std::move(options));
    EXPECT_TRUE(stage.ok()) << stage.ToStatus().ToString();
    return stage.ok() ? std::move(stage).value() : nullptr;
  }

  static std::vector<Record> Records(std::size_t count, ItemId first = 1) {
    std::vector<Record> records;
    for (std::size_t i = 0; i < count; ++i) {
      const ItemId id = first + i;
      records.emplace_back(id, "http://example.com/" + std::to_string(id));
    }
    return records;
  }

  // Waits (generously) for a log line containing `text`.
  bool WaitForLog(const std::string& text) {
    std::unique_lock<std::mutex> lock(log_mutex_);
    return log_changed_.wait_for(lock, std::chrono::seconds(60), [&] {
      for (const std::string& line : log_) {
        if (line.find(text) != std::string::npos) return true;
      }
      return false;
    });
  }

  static std::string Text(const Record& record, const char* field) {
    const Value* value = record.Find(field);
    const std::string* text =
        value == nullptr ? nullptr : std::get_if<std::string>(value);
    return text == nullptr ? "" : *text;
  }
  static std::int64_t Int(const Record& record, const char* field) {
    const Value* value = record.Find(field);
    const std::int64_t* number =
        value == nullptr ? nullptr : std::get_if<std::int64_t>(value);
    return number == nullptr ? -1 : *number;
  }
  static std::uint64_t Counter(const ExecStage& stage, const std::string& name) {
    for (const auto& [key, value] : stage.Counters()) {
      if (key == name) return value;
    }
    ADD_FAILURE() << "no counter " << name;
    return 0;
  }

  TempDir dir_;
  std::string script_;
  std::mutex log_mutex_;
  std::condition_variable log_changed_;
  std::vector<std::string> log_;  // guarded by log_mutex_
};

TEST_F(ExecStageTest, EachRecordGetsItsReplyFields) {
  ExecOptions options = Options();
  options.fields = {"url", "caption"};
  std::unique_ptr<ExecStage> stage = Make(options);
  ASSERT_NE(stage, nullptr);
  std::vector<Record> records = Records(5);
  records[1].AddColumn("caption", "a dog");
  stage->Process(records);
  std::set<std::int64_t> pids;
  for (const Record& record : records) {
    SCOPED_TRACE(record.id());
    ASSERT_FALSE(record.failed()) << record.error();
    EXPECT_EQ(Text(record, "echo_url"), record.url());
    pids.insert(Int(record, "pid"));
  }
  EXPECT_EQ(Text(records[1], "caption"), "a dog") << "an input column sent by `fields`";
  EXPECT_EQ(records[0].Find("caption"), nullptr);
  EXPECT_EQ(pids.size(), 1u) << "one long-lived subprocess";
  // The next chunk reuses it.
  std::vector<Record> more = Records(2, 10);
  stage->Process(more);
  ASSERT_FALSE(more[0].failed()) << more[0].error();
  EXPECT_EQ(Int(more[0], "pid"), *pids.begin());
  EXPECT_EQ(Counter(*stage, "exec_restarts_total"), 0u);
}

TEST_F(ExecStageTest, FailedRecordsAreNotSent) {
  std::unique_ptr<ExecStage> stage = Make(Options());
  ASSERT_NE(stage, nullptr);
  std::vector<Record> records = Records(3);
  records[1].Fail(FailureReason::kDecode, "earlier");
  stage->Process(records);
  EXPECT_FALSE(records[0].failed());
  EXPECT_EQ(records[1].error(), "earlier");
  EXPECT_EQ(records[1].Find("pid"), nullptr);
  EXPECT_FALSE(records[2].failed());
}

TEST_F(ExecStageTest, BatchesPipelineRequestsAndKeepReplyOrder) {
  ExecOptions options = Options();
  options.batch = 8;
  std::unique_ptr<ExecStage> stage = Make(options);
  ASSERT_NE(stage, nullptr);
  std::vector<Record> records = Records(21);
  stage->Process(records);
  for (const Record& record : records) {
    ASSERT_FALSE(record.failed()) << record.id() << ": " << record.error();
    EXPECT_EQ(Text(record, "echo_url"), record.url());
  }
}

TEST_F(ExecStageTest, BytesTravelAsATemporaryFileRemovedAfterTheReply) {
  ExecOptions options = Options();
  options.bytes_field = "body";
  std::unique_ptr<ExecStage> stage = Make(options);
  ASSERT_NE(stage, nullptr);
  std::vector<Record> records = Records(3);
  for (Record& record : records) {
    const std::string text = "bytes of " + std::to_string(record.id());
    record.Set("body", Bytes(text.begin(), text.end()));
  }
  stage->Process(records);
  for (const Record& record : records) {
    SCOPED_TRACE(record.id());
    ASSERT_FALSE(record.failed()) << record.error();
    EXPECT_EQ(Text(record, "text"), "bytes of " + std::to_string(record.id()));
    const std::string path = Text(record, "path");
    EXPECT_TRUE(path.starts_with(dir_.path() + "/sluice-exec-")) << path;
    EXPECT_FALSE(std::filesystem::exists(path)) << path << " is left behind";
  }
  // A record without the bytes fails alone.
  std::vector<Record> without = Records(2, 20);
  const std::string text = "x";
  without[1].Set("body", Bytes(text.begin(), text.end()));
  stage->Process(without);
  EXPECT_EQ(without[0].reason(), FailureReason::kStage);
  EXPECT_NE(without[0].error().find("no bytes in \"body\""), std::string::npos)
      << without[0].error();
  EXPECT_FALSE(without[1].failed()) << without[1].error();
  // The stage's directory goes with it.
  const std::string stage_dir =
      std::filesystem::path(Text(records[0], "path")).parent_path().string();
  EXPECT_TRUE(std::filesystem::exists(stage_dir));
  stage.reset();
  EXPECT_FALSE(std::filesystem::exists(stage_dir));
}

TEST_F(ExecStageTest, BytesTravelAsBase64) {
  ExecOptions options = Options();
  options.bytes_field = "body";
  options.bytes_as = ExecBytesAs::kBase64;
  options.batch = 4;
  std::unique_ptr<ExecStage> stage = Make(options);
  ASSERT_NE(stage, nullptr);
  std::vector<Record> records = Records(6);
  for (Record& record : records) {
    Bytes bytes;
    for (std::size_t i = 0; i < record.id() * 1000 + 1; ++i) {
      bytes.push_back(static_cast<std::uint8_t>(i * 7));
    }
    record.Set("body", std::move(bytes));
  }
  stage->Process(records);
  for (const Record& record : records) {
    SCOPED_TRACE(record.id());
    ASSERT_FALSE(record.failed()) << record.error();
    EXPECT_EQ(Int(record, "size"), static_cast<std::int64_t>(record.id() * 1000 + 1));
    std::int64_t sum = 0;
    for (std::uint8_t byte : std::get<Bytes>(*record.Find("body"))) sum += byte;
    EXPECT_EQ(Int(record, "sum"), sum);
    EXPECT_EQ(record.Find("path"), nullptr);
  }
}

TEST_F(ExecStageTest, AnErrorReplyFailsThatRecordOnly) {
  std::unique_ptr<ExecStage> stage = Make(Options("error"));
  ASSERT_NE(stage, nullptr);
  std::vector<Record> records = Records(5);
  stage->Process(records);
  EXPECT_EQ(records[2].reason(), FailureReason::kStage);
  EXPECT_EQ(records[2].error(), "exec: item 3 is cursed");
  std::set<std::int64_t> pids;
  for (std::size_t i : {0, 1, 3, 4}) {
    ASSERT_FALSE(records[i].failed()) << records[i].error();
    pids.insert(Int(records[i], "pid"));
  }
  EXPECT_EQ(pids.size(), 1u) << "an error reply is no reason to restart";
  EXPECT_EQ(Counter(*stage, "exec_error_replies_total"), 1u);
  EXPECT_EQ(Counter(*stage, "exec_restarts_total"), 0u);
}

TEST_F(ExecStageTest, AReplyOutsideWritesFailsTheRecord) {
  std::unique_ptr<ExecStage> stage = Make(Options("undeclared"));
  ASSERT_NE(stage, nullptr);
  std::vector<Record> records = Records(4);
  stage->Process(records);
  EXPECT_EQ(records[2].reason(), FailureReason::kStage);
  EXPECT_NE(records[2].error().find("\"surprise\", which is not in exec.writes"),
            std::string::npos)
      << records[2].error();
  EXPECT_EQ(records[2].Find("echo_url"), nullptr) << "a reply is applied whole or not";
  EXPECT_FALSE(records[3].failed()) << records[3].error();
}

// Not JSON, or the wrong id: that record fails, the subprocess is replaced, and the
// records after it are answered by the new one.
TEST_F(ExecStageTest, GarbageFailsTheRecordAndRestartsTheSubprocess) {
  for (const char* mode : {"garbage", "wrong_id"}) {
    SCOPED_TRACE(mode);
    for (std::size_t batch : {1, 4}) {
      ExecOptions options = Options(mode);
      options.batch = batch;
      std::unique_ptr<ExecStage> stage = Make(options);
      ASSERT_NE(stage, nullptr);
      std::vector<Record> records = Records(6);
      stage->Process(records);
      EXPECT_EQ(records[2].reason(), FailureReason::kStage);
      EXPECT_NE(records[2].error().find("bad reply"), std::string::npos)
          << records[2].error();
      EXPECT_NE(records[2].error().find(std::string(mode) == "garbage" ? "not JSON"
                                                                       : "\"id\" 999"),
                std::string::npos)
          << records[2].error();
      for (std::size_t i : {0, 1, 3, 4, 5}) {
        ASSERT_FALSE(records[i].failed()) << i << ": " << records[i].error();
      }
      EXPECT_NE(Int(records[1], "pid"), Int(records[3], "pid"));
      EXPECT_EQ(Counter(*stage, "exec_bad_replies_total"), 1u);
      EXPECT_EQ(Counter(*stage, "exec_restarts_total"), 1u);
    }
  }
}

TEST_F(ExecStageTest, ACrashFailsTheRecordInFlightAndTheNextOnesSucceed) {
  for (std::size_t batch : {1, 8}) {
    SCOPED_TRACE(batch);
    ExecOptions options = Options("crash");
    options.batch = batch;
    std::unique_ptr<ExecStage> stage = Make(options);
    ASSERT_NE(stage, nullptr);
    std::vector<Record> records = Records(6);
    stage->Process(records);
    EXPECT_EQ(records[2].reason(), FailureReason::kStage);
    EXPECT_NE(records[2].error().find("exited with status 7"), std::string::npos)
        << records[2].error();
    EXPECT_NE(records[2].error().find("dying on 3"), std::string::npos)
        << "the end of its stderr: " << records[2].error();
    for (std::size_t i : {0, 1, 3, 4, 5}) {
      ASSERT_FALSE(records[i].failed()) << i << ": " << records[i].error();
    }
    EXPECT_NE(Int(records[1], "pid"), Int(records[3], "pid"));
    EXPECT_EQ(Counter(*stage, "exec_crashes_total"), 1u);
    EXPECT_EQ(Counter(*stage, "exec_restarts_total"), 1u);
  }
}

// True once `pid` has exited (a zombie, not reaped yet), or is gone.
bool Ended(pid_t pid) {
  const std::string stat = ReadWholeFile("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  const std::size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

// A subprocess that ends between two chunks is replaced before the next one: no
// record pays for it.
TEST_F(ExecStageTest, ASubprocessThatEndedWhileIdleIsReplacedFirst) {
  std::unique_ptr<ExecStage> stage = Make(Options("exit_after_first"));
  ASSERT_NE(stage, nullptr);
  std::vector<Record> first = Records(1);
  stage->Process(first);
  ASSERT_FALSE(first[0].failed()) << first[0].error();
  const pid_t pid = static_cast<pid_t>(Int(first[0], "pid"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!Ended(pid) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_TRUE(Ended(pid));
  std::vector<Record> second = Records(3, 2);
  stage->Process(second);
  for (const Record& record : second) {
    ASSERT_FALSE(record.failed()) << record.error();
    EXPECT_NE(Int(record, "pid"), pid);
  }
  EXPECT_EQ(Counter(*stage, "exec_restarts_total"), 1u);
  EXPECT_TRUE(
      WaitForLog("exited with status 5 between records; stderr: leaving after 1"));
}

TEST_F(ExecStageTest, AHangPastTheTimeoutIsKilledAndTheRecordTimesOut) {
  ExecOptions options = Options("hang");
  options.timeout = milliseconds(200);
  options.batch = 2;
  std::unique_ptr<ExecStage> stage = Make(options);
  ASSERT_NE(stage, nullptr);
  std::vector<Record> records = Records(5);
  stage->Process(records);
  EXPECT_EQ(records[2].reason(), FailureReason::kTimeout);
  EXPECT_NE(records[2].error().find("within 200 ms"), std::string::npos)
      << records[2].error();
  const pid_t hung = static_cast<pid_t>(Int(records[0], "pid"));
  for (std::size_t i : {0, 1, 3, 4}) {
    ASSERT_FALSE(records[i].failed()) << i << ": " << records[i].error();
  }
  EXPECT_NE(Int(records[3], "pid"), hung);
  EXPECT_EQ(Counter(*stage, "exec_timeouts_total"), 1u);
  // Killed and reaped: no such process any more, not even a zombie.
  EXPECT_EQ(::kill(hung, 0), -1);
}

TEST_F(ExecStageTest, ACommandThatCannotRunFailsTheFactory) {
  ExecOptions missing = Options();
  missing.command = {dir_.File("no-such-program")};
  Result<std::unique_ptr<ExecStage>> stage = ExecStage::Create(missing);
  ASSERT_FALSE(stage.ok());
  EXPECT_NE(stage.status().message().find("exec.command: cannot run"), std::string::npos)
      << stage.status().message();
  EXPECT_NE(stage.status().message().find("No such file"), std::string::npos)
      << stage.status().message();

  ExecOptions on_path = Options();
  on_path.command = {"sluice-no-such-program-on-path"};
  EXPECT_FALSE(ExecStage::Create(on_path).ok());

  // One that runs but exits at once: seen within startup_ms.
  ExecOptions exits = Options();
  exits.command = {"/bin/sh", "-c", "echo cannot import the model >&2; exit 3"};
  exits.startup = milliseconds(60000);
  stage = ExecStage::Create(exits);
  ASSERT_FALSE(stage.ok());
  EXPECT_NE(stage.status().message().find("exited with status 3 before any request"),
            std::string::npos)
      << stage.status().message();
  EXPECT_NE(stage.status().message().find("cannot import the model"), std::string::npos)
      << stage.status().message();

  ExecOptions chatty = Options();
  chatty.command = {"/bin/sh", "-c", "echo hello; sleep 60"};
  chatty.startup = milliseconds(60000);
  stage = ExecStage::Create(chatty);
  ASSERT_FALSE(stage.ok());
  EXPECT_NE(
      stage.status().message().find("wrote on its stdout before any request: 'hello'"),
      std::string::npos)
      << stage.status().message();
}

TEST_F(ExecStageTest, StderrGoesToTheLogWithoutBlockingTheSubprocess) {
  std::unique_ptr<ExecStage> stage = Make(Options("stderr"));
  ASSERT_NE(stage, nullptr);
  std::vector<Record> records = Records(4);
  stage->Process(records);
  for (const Record& record : records) {
    ASSERT_FALSE(record.failed()) << record.error();
  }
  EXPECT_TRUE(WaitForLog("note 4"));
  std::lock_guard<std::mutex> lock(log_mutex_);
  bool prefixed = false;
  for (const std::string& line : log_) {
    if (line.find("note 1") == std::string::npos) continue;
    prefixed = line.starts_with("exec " + std::string(kPython) + " (pid ");
  }
  EXPECT_TRUE(prefixed) << "a line names the stage, the program and its pid";
}

// The child closes its stdin and exits: the request written to it gets EPIPE, not a
// SIGPIPE that would end this test program.
TEST_F(ExecStageTest, AChildClosingItsStdinCannotKillTheProcess) {
  ExecOptions options = Options("close_stdin");
  options.bytes_field = "body";
  options.bytes_as = ExecBytesAs::kBase64;
  std::unique_ptr<ExecStage> stage = Make(options);
  ASSERT_NE(stage, nullptr);
  std::vector<Record> records = Records(3);
  for (Record& record : records) record.Set("body", Bytes(1 << 20, 'a'));
  stage->Process(records);
  for (const Record& record : records) {
    EXPECT_EQ(record.reason(), FailureReason::kStage) << record.error();
    EXPECT_NE(record.error().find("before answering"), std::string::npos)
        << record.error();
  }
  EXPECT_EQ(Counter(*stage, "exec_crashes_total"), 3u);
}

TEST_F(ExecStageTest, ChunksRunConcurrentlyEachWithItsOwnSubprocess) {
  ExecOptions options = Options();
  options.batch = 3;
  std::unique_ptr<ExecStage> stage = Make(options);
  ASSERT_NE(stage, nullptr);
  constexpr std::size_t kThreads = 4;
  std::vector<std::vector<Record>> chunks;
  for (std::size_t t = 0; t < kThreads; ++t)
    chunks.push_back(Records(40, 1000 * (t + 1)));
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t round = 0; round < 3; ++round) {
        stage->Process(std::span<Record>(chunks[t]).subspan(round * 10, 10));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::set<std::int64_t> pids;
  for (const std::vector<Record>& chunk : chunks) {
    for (std::size_t i = 0; i < 30; ++i) {
      ASSERT_FALSE(chunk[i].failed()) << chunk[i].error();
      EXPECT_EQ(Text(chunk[i], "echo_url"), chunk[i].url());
      pids.insert(Int(chunk[i], "pid"));
    }
  }
  EXPECT_LE(pids.size(), kThreads) << "one subprocess per thread at most";
  EXPECT_EQ(Counter(*stage, "exec_restarts_total"), 0u);
}

std::size_t OpenFds() {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/self/fd")) {
    ++count;
  }
  return count;
}

// After crashes, hangs and restarts, and the stage's end: no descriptor left open,
// no child left running or unreaped.
TEST_F(ExecStageTest, NothingOutlivesTheStage) {
  const std::size_t fds = OpenFds();
  for (const char* mode : {"crash", "hang", "garbage", "echo"}) {
    ExecOptions options = Options(mode);
    options.timeout = milliseconds(200);
    options.bytes_field = "body";
    std::unique_ptr<ExecStage> stage = Make(options);
    ASSERT_NE(stage, nullptr);
    std::vector<Record> records = Records(4);
    for (Record& record : records) record.Set("body", Bytes{'a'});
    stage->Process(records);
    EXPECT_FALSE(records[3].failed()) << mode << ": " << records[3].error();
  }
  EXPECT_EQ(OpenFds(), fds);
  int status = 0;
  EXPECT_EQ(::waitpid(-1, &status, WNOHANG), -1) << "a child is left";
  EXPECT_EQ(errno, ECHILD);
}

// --- through the registry and YAML
// ------------------------------------------------------

class ExecYamlTest : public ExecStageTest {
 protected:
  Result<std::unique_ptr<Stage>> Build(const std::string& yaml) {
    StageRegistry registry;
    SLUICE_RETURN_IF_ERROR(RegisterAllStages(registry));
    errors_.clear();
    YamlOptions options(YAML::Load(yaml), "stages[1] (run)", &errors_);
    Result<std::unique_ptr<Stage>> stage = (*registry.Find("exec"))(options);
    if (!stage.ok()) return stage;
    SLUICE_RETURN_IF_ERROR(options.Finish());
    return stage;
  }
  std::vector<std::string> errors_;
};

TEST_F(ExecYamlTest, OptionsMapOntoTheStageAndDeclareItsFields) {
  auto stage = Build(fmt::format(
      "{{command: [{}, {}, echo], timeout_ms: 500, fields: [url, caption], "
      "bytes_field: body, bytes_as: base64, batch: 16, writes: [echo_url, pid], "
      "restart_backoff_ms: 5, startup_ms: 0}}",
      kPython, script_));
  ASSERT_TRUE(stage.ok()) << stage.ToStatus().ToString();
  const auto* exec = dynamic_cast<const ExecStage*>(stage->get());
  ASSERT_NE(exec, nullptr);
  EXPECT_EQ(exec->options().command,
            (std::vector<std::string>{kPython, script_, "echo"}));
  EXPECT_EQ(exec->options().timeout, milliseconds(500));
  EXPECT_EQ(exec->options().batch, 16u);
  EXPECT_EQ(exec->options().bytes_as, ExecBytesAs::kBase64);
  EXPECT_EQ(exec->options().where, "stages[1] (run)");
  const StageFields fields = (*stage)->Fields();
  EXPECT_TRUE(fields.declared);
  EXPECT_EQ(fields.reads, std::vector<std::string>{"body"});
  EXPECT_EQ(fields.writes, (std::vector<std::string>{"echo_url", "pid"}));
  EXPECT_EQ(fields.reads_or_columns, std::vector<std::string>{"caption"});
}

TEST_F(ExecYamlTest, BadOptionsNameTheirYamlPath) {
  auto no_command = Build("{writes: [a]}");
  ASSERT_FALSE(no_command.ok());
  EXPECT_NE(no_command.ToStatus().message().find("stages[1] (run).command: an exec stage "
                                                 "needs `command`"),
            std::string::npos)
      << no_command.ToStatus().message();
  auto empty = Build("{command: []}");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.ToStatus().message().find("stages[1] (run).command"),
            std::string::npos);
  auto reserved =
      Build(fmt::format("{{command: [{}, {}], writes: [id]}}", kPython, script_));
  ASSERT_FALSE(reserved.ok());
  EXPECT_NE(reserved.ToStatus().message().find("stages[1] (run).writes: 'id'"),
            std::string::npos)
      << reserved.ToStatus().message();
  auto bad_choice =
      Build(fmt::format("{{command: [{}, {}], bytes_as: carrier_pigeon, startup_ms: 0}}",
                        kPython, script_));
  ASSERT_FALSE(bad_choice.ok());
  EXPECT_NE(bad_choice.ToStatus().message().find("stages[1] (run).bytes_as"),
            std::string::npos)
      << bad_choice.ToStatus().message();
  auto missing = Build("{command: [/nonexistent/sluice-exec-test]}");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.ToStatus().message().find(
                "stages[1] (run).command: cannot run /nonexistent/sluice-exec-test"),
            std::string::npos)
      << missing.ToStatus().message();
}

// --- the shipped examples ------------------------------------------------------------

std::string ExampleScript(const std::string& name) {
  return std::string(SLUICE_SOURCE_DIR) + "/examples/exec/" + name;
}

Bytes ReadBytes(const std::string& path) {
  const std::string text = ReadWholeFile(path);
  return Bytes(text.begin(), text.end());
}

TEST_F(ExecStageTest, UrlInfoExampleDescribesEachRecord) {
  for (ExecBytesAs bytes_as : {ExecBytesAs::kPath, ExecBytesAs::kBase64}) {
    ExecOptions options = Options();
    options.command = {kPython, ExampleScript("url_info.py")};
    options.fields = {"url", "caption"};
    options.bytes_field = "body";
    options.bytes_as = bytes_as;
    options.writes = {"host", "caption_words", "body_bytes", "kind"};
    options.startup = milliseconds(200);
    std::unique_ptr<ExecStage> stage = Make(options);
    ASSERT_NE(stage, nullptr);
    std::vector<Record> records;
    records.emplace_back(1, "http://images.example.org/cat.png");
    records[0].AddColumn("caption", "a cat on a mat");
    records[0].Set("body", Bytes{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0});
    records.emplace_back(2, "not a url");
    records[1].Set("body", Bytes{1, 2, 3});
    stage->Process(records);
    ASSERT_FALSE(records[0].failed()) << records[0].error();
    EXPECT_EQ(Text(records[0], "host"), "images.example.org");
    EXPECT_EQ(Int(records[0], "caption_words"), 5);
    EXPECT_EQ(Int(records[0], "body_bytes"), 10);
    EXPECT_EQ(Text(records[0], "kind"), "png");
    EXPECT_EQ(records[1].reason(), FailureReason::kStage);
    EXPECT_NE(records[1].error().find("ValueError: no host"), std::string::npos)
        << records[1].error();
  }
}

TEST_F(ExecStageTest, OpenCvFacesExampleFindsTheFacesOfDlibsPhotos) {
  const std::string photos = "/usr/share/doc/libdlib19.1/examples/faces";
  if (!std::filesystem::exists(photos + "/bald_guys.jpg")) {
    GTEST_SKIP() << photos << " is missing (Debian package libdlib19.1)";
  }
  if (std::system((std::string(kPython) + " -c 'import cv2' 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << kPython << " cannot import cv2 (Debian package python3-opencv)";
  }
  ExecOptions options = Options();
  options.command = {kPython, ExampleScript("opencv_faces.py")};
  options.bytes_field = "body";
  options.writes = {"faces", "face_boxes", "width", "height"};
  options.timeout = milliseconds(120000);
  options.startup = milliseconds(200);
  std::unique_ptr<ExecStage> stage = Make(options);
  ASSERT_NE(stage, nullptr);
  std::vector<Record> records = Records(3);
  records[0].Set("body", ReadBytes(photos + "/bald_guys.jpg"));
  records[1].Set("body", ReadBytes(photos + "/Tom_Cruise_avp_2014_4.jpg"));
  records[2].Set("body",
                 Bytes{'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'});
  stage->Process(records);
  for (std::size_t i : {0, 1}) {
    SCOPED_TRACE(i);
    ASSERT_FALSE(records[i].failed()) << records[i].error();
    const std::int64_t faces = Int(records[i], "faces");
    EXPECT_GE(faces, 1);
    const Value* boxes = records[i].Find("face_boxes");
    ASSERT_NE(boxes, nullptr);
    ASSERT_TRUE(std::holds_alternative<JsonText>(*boxes));
    const nlohmann::json parsed = nlohmann::json::parse(std::get<JsonText>(*boxes).text);
    ASSERT_EQ(static_cast<std::int64_t>(parsed.size()), faces);
    for (const nlohmann::json& box : parsed) {
      ASSERT_EQ(box.size(), 4u);
      EXPECT_LE(box[0].get<int>() + box[2].get<int>(), Int(records[i], "width"));
      EXPECT_LE(box[1].get<int>() + box[3].get<int>(), Int(records[i], "height"));
    }
  }
  EXPECT_GE(Int(records[0], "faces"), 10) << "bald_guys.jpg is a crowd";
  EXPECT_EQ(records[2].reason(), FailureReason::kStage);
  EXPECT_NE(records[2].error().find("cannot decode"), std::string::npos)
      << records[2].error();
}

}  // namespace
}  // namespace sluice::testing
