// The CLI contract: subcommand spellings, exit codes, status/export/retry output,
// resume behaviour, and stopping on SIGINT.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "tests/test_util.h"

namespace sluice::testing {
namespace {

constexpr const char* kFlakyPipeline = R"(
name: flaky
batch_size: 100
stages:
  - {name: wait, type: sleep, ms: 1}
  - {name: flake, type: fail, fraction: 0.2, reason: http_5xx}
)";

std::string UrlLines(int count) {
  std::string text;
  for (int i = 0; i < count; ++i)
    text += "http://example.com/" + std::to_string(i) + "\n";
  return text;
}

nlohmann::json StatusJson(const std::string& workdir) {
  CommandResult result = RunSluice({"status", "--workdir", workdir, "--json"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return nlohmann::json::parse(result.out, nullptr, false);
}

// Polls `sluice status --json` (from another process, while a run goes on) until
// `condition` holds; false after a minute.
bool WaitForStatus(const std::string& workdir,
                   const std::function<bool(const nlohmann::json&)>& condition) {
  return WaitFor(
      [&] {
        CommandResult result = RunSluice({"status", "--workdir", workdir, "--json"});
        if (result.exit_code != 0) return false;
        auto status = nlohmann::json::parse(result.out, nullptr, false);
        return status.is_object() && condition(status);
      },
      std::chrono::seconds(60));
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pipeline_ = dir_.File("flaky.yaml");
    WriteFile(pipeline_, kFlakyPipeline);
    input_ = dir_.File("urls.txt");
    WriteFile(input_, UrlLines(1000));
    workdir_ = dir_.File("work");
  }

  CommandResult Run(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"run",       pipeline_, "--input",           input_,
                                     "--workdir", workdir_,  "--status-interval", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunSluice(args);
  }

  TempDir dir_;
  std::string pipeline_;
  std::string input_;
  std::string workdir_;
};

TEST_F(CliTest, HelpWorksOnEveryCommand) {
  for (const char* command :
       {"run", "ingest", "status", "export", "validate", "test", "retry", "plan"}) {
    CommandResult result = RunSluice({command, "--help"});
    EXPECT_EQ(result.exit_code, 0) << command << ": " << result.err;
    EXPECT_NE(result.out.find("Usage"), std::string::npos) << command;
  }
  CommandResult top = RunSluice({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("retry"), std::string::npos);
}

TEST_F(CliTest, UsageErrorsExitTwoWithAMessage) {
  CommandResult unknown_flag = RunSluice({"status", "--workdir", workdir_, "--bogus"});
  EXPECT_EQ(unknown_flag.exit_code, 2);
  EXPECT_NE(unknown_flag.err.find("--bogus"), std::string::npos) << unknown_flag.err;

  CommandResult bad_format =
      RunSluice({"export", "--workdir", workdir_, "--format", "xml"});
  EXPECT_EQ(bad_format.exit_code, 2);
  EXPECT_NE(bad_format.err.find("xml"), std::string::npos) << bad_format.err;

  CommandResult missing_workdir =
      RunSluice({"status", "--workdir", dir_.File("nowhere")});
  EXPECT_EQ(missing_workdir.exit_code, 2);
  EXPECT_NE(missing_workdir.err.find("nowhere"), std::string::npos)
      << missing_workdir.err;

  CommandResult bad_set = Run({"--set", "novalue"});
  EXPECT_EQ(bad_set.exit_code, 2);
  EXPECT_NE(bad_set.err.find("KEY=VALUE"), std::string::npos) << bad_set.err;

  CommandResult bad_value = Run({"--set", "stages.wait.ms=soon"});
  EXPECT_EQ(bad_value.exit_code, 2);
  EXPECT_NE(bad_value.err.find("stages[0] (wait).ms"), std::string::npos)
      << bad_value.err;

  CommandResult bad_reason =
      RunSluice({"retry", "--workdir", workdir_, "--reason", "gremlins"});
  EXPECT_EQ(bad_reason.exit_code, 2);
  EXPECT_NE(bad_reason.err.find("http_5xx"), std::string::npos) << bad_reason.err;
}

// A misspelt or missing command is named as such, with the list of commands.
TEST_F(CliTest, UnknownOrMissingCommandListsTheCommands) {
  CommandResult unknown = RunSluice({"frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("unknown command 'frobnicate'"), std::string::npos)
      << unknown.err;
  CommandResult unknown_with_flags = RunSluice({"frobnicate", "--workdir", workdir_});
  EXPECT_EQ(unknown_with_flags.exit_code, 2);
  EXPECT_NE(unknown_with_flags.err.find("unknown command 'frobnicate'"),
            std::string::npos)
      << unknown_with_flags.err;
  CommandResult none = RunSluice({});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("a command is required"), std::string::npos) << none.err;
  for (const CommandResult& result : {unknown, unknown_with_flags, none}) {
    EXPECT_EQ(result.err.find("A subcommand is required"), std::string::npos)
        << result.err;
    for (const char* command :
         {"run", "ingest", "status", "export", "retry", "validate"}) {
      EXPECT_NE(result.err.find("\n  " + std::string(command) + " "), std::string::npos)
          << command << " is not listed in:\n"
          << result.err;
    }
  }
}

// `sluice plan`: the rate a deadline needs, and from the measured run what it
// takes, each number with the arithmetic that made it.
TEST_F(CliTest, PlanShowsTheRateAndWhatAMeasuredRunNeeds) {
  CommandResult alone = RunSluice({"plan", "--items", "2e9", "--deadline", "7d"});
  ASSERT_EQ(alone.exit_code, 0) << alone.err;
  EXPECT_NE(alone.out.find("needed: 2,000,000,000 items in 7d (604,800 s) = "
                           "2,000,000,000 / 604,800 = 3,307 items/s"),
            std::string::npos)
      << alone.out;

  ASSERT_EQ(Run().exit_code, 0);
  CommandResult plan = RunSluice({"plan", "--items", "2e9", "--deadline", "7d",
                                  "--workdir", workdir_, "--cost-per-core-hour", "0.05"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_NE(plan.out.find("group main:"), std::string::npos) << plan.out;
  EXPECT_NE(plan.out.find("measured: 1,000 items by 1 worker(s)"), std::string::npos)
      << plan.out;
  EXPECT_NE(plan.out.find("  wait (waits): "), std::string::npos) << plan.out;
  // flake (CPU): T per record on one core = R items/s per core -> 3,307 / R = C cores
  std::smatch cpu;
  ASSERT_TRUE(std::regex_search(
      plan.out, cpu,
      std::regex(R"(flake \(CPU\): .* = ([0-9.]+) items/s per core -> 3,307 / ([0-9.]+) = )"
                 R"(([0-9.]+) cores)")))
      << plan.out;
  EXPECT_EQ(cpu[1].str(), cpu[2].str());
  EXPECT_NEAR(std::stod(cpu[3].str()), 3307 / std::stod(cpu[1].str()),
              0.1 + 0.01 * std::stod(cpu[3].str()));
  EXPECT_NE(plan.out.find("cost: "), std::string::npos) << plan.out;
  EXPECT_NE(plan.out.find(" x 168.0 h x 0.05 per core-hour = "), std::string::npos)
      << plan.out;

  CommandResult bad = RunSluice({"plan", "--items", "10", "--deadline", "soon"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--deadline soon"), std::string::npos) << bad.err;
}

// --progress: the view redrawn in place (forced here: the test's stderr is no
// terminal), the plain status line, or nothing. Every record waits 1.5 s in the sleep
// stage, so the run lasts past the first redraw (1 s) however fast the machine.
TEST_F(CliTest, ProgressIsABarAPlainLineOrNothing) {
  const std::string slow = dir_.Write(
      "slow.yaml", "name: slow\nbatch_size: 5\nstages:\n"
                   "  - {name: wait, type: sleep, ms: 1500}\n"
                   "  - {name: flake, type: fail, fraction: 0.5, reason: http_5xx}\n");
  const std::string input = dir_.Write("few.txt", UrlLines(20));
  auto run = [&](const std::string& workdir, const std::string& mode) {
    return RunSluice({"run", slow, "--input", input, "--workdir", dir_.File(workdir),
                      "--progress", mode, "--status-interval", "1"});
  };
  CommandResult bar = run("bar", "bar");
  ASSERT_EQ(bar.exit_code, 0) << bar.err;
  EXPECT_NE(bar.err.find("\x1b[2K  wait "), std::string::npos) << bar.err;
  EXPECT_NE(bar.err.find("\x1b[2K  flake "), std::string::npos) << bar.err;
  EXPECT_NE(bar.err.find("items/s, ETA "), std::string::npos) << bar.err;
  EXPECT_NE(bar.err.find(" in flight"), std::string::npos) << bar.err;
  EXPECT_EQ(bar.err.find("sluice: done "), std::string::npos) << bar.err;

  CommandResult plain = run("plain", "plain");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_NE(plain.err.find("sluice: done "), std::string::npos) << plain.err;
  EXPECT_EQ(plain.err.find("\x1b["), std::string::npos) << plain.err;

  CommandResult off = run("off", "off");
  ASSERT_EQ(off.exit_code, 0) << off.err;
  EXPECT_EQ(off.err.find("sluice: done "), std::string::npos) << off.err;
  EXPECT_EQ(off.err.find("\x1b["), std::string::npos) << off.err;
  EXPECT_NE(off.err.find("items processed"), std::string::npos) << off.err;  // the summary

  CommandResult wrong = run("wrong", "fancy");
  EXPECT_EQ(wrong.exit_code, 2) << wrong.err;
}

// --log-format json: every line on standard error is one JSON object with the time,
// the level and the message, for a log collector; the default is "sluice: MESSAGE".
TEST_F(CliTest, JsonLogsAreOneObjectPerLine) {
  CommandResult run = Run({"--log-format", "json", "--progress", "plain"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::istringstream lines(run.err);
  int count = 0;
  bool summary = false;
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json object = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(object.is_object()) << line;
    EXPECT_TRUE(object["time"].is_string()) << line;
    EXPECT_TRUE(object["level"] == "info" || object["level"] == "warning" ||
                object["level"] == "error")
        << line;
    summary |= object["message"].get<std::string>().find("items processed") !=
               std::string::npos;
    ++count;
  }
  EXPECT_GE(count, 2);
  EXPECT_TRUE(summary) << run.err;
  CommandResult wrong = Run({"--log-format", "xml"});
  EXPECT_EQ(wrong.exit_code, 2);
}

// A pipeline split in stage groups shows which stages each group runs.
TEST_F(CliTest, ValidateShowsTheStageGroups) {
  CommandResult split =
      RunSluice({"validate", SourceDir() + "/pipelines/faces-split.yaml"});
  ASSERT_EQ(split.exit_code, 0) << split.err;
  EXPECT_NE(split.out.find("\n  group download: fetch, decode, resize\n"),
            std::string::npos)
      << split.out;
  EXPECT_NE(split.out.find("\n  group detect: faces, encode\n"), std::string::npos)
      << split.out;
  EXPECT_NE(split.out.find("\n  blobs: <workdir>/blobs"), std::string::npos) << split.out;
}

// Each stage on its own line, each of its options on a line of its own below it,
// all indented alike, whether the file wrote the stage in block or flow style.
TEST_F(CliTest, ValidateIndentsEveryOptionLine) {
  CommandResult faces = RunSluice({"validate", SourceDir() + "/pipelines/faces.yaml"});
  ASSERT_EQ(faces.exit_code, 0) << faces.err;
  std::istringstream lines(faces.out);
  std::string line;
  ASSERT_TRUE(std::getline(lines, line));
  EXPECT_NE(line.find("ok: pipeline 'faces'"), std::string::npos) << line;
  std::vector<std::string> stages;
  int options = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("    ", 0) == 0) {
      EXPECT_NE(line[4], ' ') << "an option line indented otherwise: '" << line << "'";
      EXPECT_NE(line.find(": "), std::string::npos) << line;
      ++options;
    } else {
      EXPECT_EQ(line.rfind("  ", 0), 0u) << "not indented: '" << line << "'";
      stages.push_back(line);
    }
  }
  EXPECT_EQ(stages, (std::vector<std::string>{"  fetch (fetch)", "  decode (decode)",
                                              "  resize (resize)", "  faces (faces)",
                                              "  encode (encode)"}))
      << faces.out;
  EXPECT_EQ(options, 19) << faces.out;  // 8 + 1 + 4 + 4 + 2 in pipelines/faces.yaml
  EXPECT_NE(faces.out.find("  fetch (fetch)\n    max_in_flight: 2000\n"
                           "    max_host_connections: 16\n"),
            std::string::npos)
      << faces.out;

  CommandResult flow = RunSluice({"validate", pipeline_});  // stages in flow style
  ASSERT_EQ(flow.exit_code, 0) << flow.err;
  EXPECT_NE(flow.out.find("\n  wait (sleep)\n    ms: 1\n  flake (fail)\n"
                          "    fraction: 0.2\n    reason: http_5xx\n"),
            std::string::npos)
      << flow.out;
}

TEST_F(CliTest, ValidateNamesTheYamlPath) {
  std::string bad = dir_.File("bad.yaml");
  WriteFile(
      bad,
      "name: bad\nstages:\n  - {name: w, type: sleep, ms: -1}\n  - {type: nosuch}\n");
  CommandResult result = RunSluice({"validate", bad});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("stages[0] (w).ms"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("stages[1] (nosuch).type: unknown stage type"),
            std::string::npos)
      << result.err;

  CommandResult good = RunSluice({"validate", pipeline_});
  EXPECT_EQ(good.exit_code, 0) << good.err;
  CommandResult shipped =
      RunSluice({"validate", SourceDir() + "/pipelines/examples/sleep.yaml"});
  EXPECT_EQ(shipped.exit_code, 0) << shipped.err;
}

TEST_F(CliTest, RunStatusExportRetryAndResume) {
  CommandResult first = Run();
  ASSERT_EQ(first.exit_code, 0) << first.err;

  nlohmann::json status = StatusJson(workdir_);
  EXPECT_EQ(status["items"], 1000);
  EXPECT_EQ(status["batches"]["done"], 10);
  EXPECT_EQ(status["batches"]["pending"], 0);
  EXPECT_EQ(status["batches"]["leased"], 0);
  int ok = status["results"]["ok"];
  int failed = status["results"]["failed"];
  EXPECT_EQ(ok + failed, 1000);
  EXPECT_GT(failed, 100);
  EXPECT_LT(failed, 300);
  EXPECT_EQ(status["failures"]["http_5xx"], failed);

  std::vector<nlohmann::json> rows = ExportRows(workdir_);
  ASSERT_EQ(rows.size(), 1000u);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i]["id"], i + 1) << "ids are dense, from 1, in input order";
    EXPECT_EQ(rows[i]["url"], "http://example.com/" + std::to_string(i));
    if (rows[i]["status"] == "failed") {
      EXPECT_EQ(rows[i]["reason"], "http_5xx");
    } else {
      EXPECT_EQ(rows[i]["status"], "ok");
      EXPECT_EQ(rows[i]["reason"], "");
    }
  }

  CommandResult csv = RunSluice({"export", "--workdir", workdir_, "--format", "csv"});
  EXPECT_EQ(csv.exit_code, 0);
  EXPECT_EQ(csv.out.rfind("id,url,status,reason,error\n", 0), 0u)
      << csv.out.substr(0, 100);
  EXPECT_EQ(std::count(csv.out.begin(), csv.out.end(), '\n'), 1001);

  // A finished workdir: the same command does nothing and succeeds.
  CommandResult again = Run();
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("already ingested"), std::string::npos) << again.err;
  EXPECT_EQ(StatusJson(workdir_)["items"], 1000);

  // Retry puts the failed items back; with the same deterministic pipeline they
  // fail again, and nothing else changes.
  CommandResult retry =
      RunSluice({"retry", "--workdir", workdir_, "--reason", "http_5xx"});
  EXPECT_EQ(retry.exit_code, 0) << retry.err;
  EXPECT_NE(retry.err.find(std::to_string(failed)), std::string::npos) << retry.err;
  nlohmann::json after_retry = StatusJson(workdir_);
  EXPECT_EQ(after_retry["results"]["failed"], 0);
  EXPECT_GT(after_retry["batches"]["pending"].get<int>(), 0);
  std::vector<nlohmann::json> pending_rows = ExportRows(workdir_);
  EXPECT_EQ(
      std::count_if(pending_rows.begin(), pending_rows.end(),
                    [](const nlohmann::json& row) { return row["status"] == "pending"; }),
      failed);

  CommandResult rerun = Run();
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  EXPECT_EQ(ExportRows(workdir_), rows);
}

TEST_F(CliTest, ResumingWithAnotherPipelineIsRefused) {
  ASSERT_EQ(Run().exit_code, 0);
  // Another pipeline on the same workdir is refused: results would be mixed.
  CommandResult other = Run({"--set", "stages.flake.fraction=0"});
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.err.find("new --workdir"), std::string::npos) << other.err;
  // Tuning that does not change results is fine.
  CommandResult tuned = Run({"--set", "threads=1"});
  EXPECT_EQ(tuned.exit_code, 0) << tuned.err;
}

// Unique pick without locks, across processes: two runs on one workdir at once
// share the batches and commit every item exactly once.
TEST_F(CliTest, TwoRunsOnOneWorkdirShareTheWork) {
  WriteFile(input_, UrlLines(20000));
  std::string slow = dir_.File("slow.yaml");
  WriteFile(slow,
            "name: slow\nbatch_size: 100\nin_flight_batches: 20\nstages:\n"
            "  - {name: wait, type: sleep, ms: 100}\n");
  CommandResult ingest =
      RunSluice({"ingest", slow, "--input", input_, "--workdir", workdir_});
  ASSERT_EQ(ingest.exit_code, 0) << ingest.err;
  std::vector<std::string> args = {
      "run", slow, "--workdir", workdir_, "--status-interval", "0"};
  SluiceProcess first(args, dir_.path());
  SluiceProcess second(args, dir_.path());
  CommandResult first_result;
  CommandResult second_result;
  ASSERT_TRUE(first.Wait(std::chrono::seconds(120), &first_result));
  ASSERT_TRUE(second.Wait(std::chrono::seconds(120), &second_result));
  EXPECT_EQ(first_result.exit_code, 0) << first_result.err;
  EXPECT_EQ(second_result.exit_code, 0) << second_result.err;
  // Each did part of the work ("N items processed" with N > 0).
  EXPECT_EQ(first_result.err.find("sluice: 0 items processed"), std::string::npos)
      << first_result.err;
  EXPECT_EQ(second_result.err.find("sluice: 0 items processed"), std::string::npos)
      << second_result.err;

  nlohmann::json status = StatusJson(workdir_);
  EXPECT_EQ(status["results"]["ok"], 20000);
  EXPECT_EQ(status["batches"]["done"], 200);
  std::vector<nlohmann::json> rows = ExportRows(workdir_);
  ASSERT_EQ(rows.size(), 20000u);
  for (std::size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i]["id"], i + 1);
}

TEST_F(CliTest, FirstSigintFinishesInFlightBatchesAndResumes) {
  WriteFile(input_, UrlLines(20000));
  std::string slow = dir_.File("slow.yaml");
  WriteFile(slow,
            "name: slow\nbatch_size: 100\nstages:\n"
            "  - {name: wait, type: sleep, ms: 200, max_in_flight: 500}\n");
  std::vector<std::string> args = {"run",       slow,     "--input",           input_,
                                   "--workdir", workdir_, "--status-interval", "0"};
  SluiceProcess process(args, dir_.path());
  // Wait until it has committed something, so the signal lands mid-run.
  ASSERT_TRUE(WaitForStatus(workdir_, [](const nlohmann::json& status) {
    return status["results"]["ok"].get<int>() > 0;
  }));
  process.Signal(SIGINT);
  CommandResult stopped;
  // The batches in flight finish their 200 ms sleeps and commit; the deadline only
  // guards against a hang.
  ASSERT_TRUE(process.Wait(std::chrono::seconds(60), &stopped));
  EXPECT_EQ(stopped.exit_code, 130) << stopped.err;
  EXPECT_NE(stopped.err.find("finishing the batches in flight"), std::string::npos)
      << stopped.err;

  nlohmann::json status = StatusJson(workdir_);
  EXPECT_EQ(status["batches"]["leased"], 0)
      << "in-flight batches were committed or released";
  int done = status["results"]["ok"];
  EXPECT_GT(done, 0);
  EXPECT_LT(done, 20000);
  EXPECT_EQ(done % 100, 0) << "only whole batches are committed";

  CommandResult resumed = RunSluice(args);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(StatusJson(workdir_)["results"]["ok"], 20000);
}

TEST_F(CliTest, SecondSigintExitsAtOnce) {
  WriteFile(input_, UrlLines(20000));
  std::string slow = dir_.File("slow.yaml");
  WriteFile(slow,
            "name: slow\nbatch_size: 100\ngrace_seconds: 600\nstages:\n"
            "  - {name: wait, type: sleep, ms: 600000, max_in_flight: 500}\n");
  SluiceProcess process(
      {"run", slow, "--input", input_, "--workdir", workdir_, "--status-interval", "0"},
      dir_.path());
  ASSERT_TRUE(WaitForStatus(workdir_, [](const nlohmann::json& status) {
    return status["batches"]["leased"].get<int>() > 0;
  }));
  process.Signal(SIGINT);
  // The first signal waits up to the 600 s grace for 600 s sleeps; the second must
  // not. "At once" is told from waiting by an order of magnitude, not by a tight
  // bound: the process must be gone within a minute, when it would otherwise wait
  // ten.
  CommandResult ignored;
  EXPECT_FALSE(process.Wait(std::chrono::milliseconds(300), &ignored));
  process.Signal(SIGINT);
  CommandResult stopped;
  ASSERT_TRUE(process.Wait(std::chrono::seconds(60), &stopped));
  EXPECT_EQ(stopped.exit_code, 130) << stopped.err;
  EXPECT_EQ(StatusJson(workdir_)["items"], 20000) << "ingested items are kept";
}

}  // namespace
}  // namespace sluice::testing
