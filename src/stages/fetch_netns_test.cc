// The address rule against redirects and DNS answers that point inward, tested where
// no packet can leave the machine: a child process moves into a new network
// namespace whose only interface is a loopback holding a "public" address
// (203.0.113.10, TEST-NET-3) and private ones (10.9.9.9 and the cloud metadata
// address 169.254.169.254). A fault server listens on each. The fetch stage, with
// the default rule, may reach the public one and must not send a single request to
// the private ones, whether a redirect or a DNS answer leads there.
//
// Needs CAP_SYS_ADMIN (root) and iproute2's `ip`; skipped without them.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "src/core/runtime.h"
#include "src/stages/fetch_stage.h"
#include "tests/fixtures/fault_server.h"
#include "tests/support/temp_dir.h"

namespace sluice {
namespace {

using testing::FaultServer;
using testing::FaultServerOptions;

constexpr int kSkipExit = 77;

std::map<ItemId, Record> FetchAll(const FetchOptions& options,
                                  const std::vector<std::string>& urls) {
  std::map<ItemId, Record> out;
  std::mutex mu;
  std::vector<NamedStage> stages;
  stages.push_back(NamedStage{"fetch", std::make_unique<FetchStage>(options)});
  Runtime runtime(RuntimeOptions{}, std::move(stages),
                  [&](BatchId, std::vector<Record> rs) {
                    std::lock_guard lock(mu);
                    for (Record& r : rs) {
                      const ItemId id = r.id();
                      out.emplace(id, std::move(r));
                    }
                  });
  if (!runtime.Start().ok()) return out;
  std::vector<Record> batch;
  for (std::size_t i = 0; i < urls.size(); ++i) batch.emplace_back(i, urls[i]);
  if (!runtime.Submit(1, std::move(batch)).ok()) return out;
  runtime.Finish();
  return out;
}

// The child's checks; returns the number of failed ones, printed to stderr.
int CheckInsideNamespace(const std::string& root) {
  if (unshare(CLONE_NEWNET) != 0) {
    std::perror("unshare(CLONE_NEWNET)");
    return kSkipExit;
  }
  for (const char* command :
       {"ip link set lo up", "ip addr add 203.0.113.10/32 dev lo",
        "ip addr add 10.9.9.9/32 dev lo", "ip addr add 169.254.169.254/32 dev lo"}) {
    const std::string quiet = std::string(command) + " 2>/dev/null";
    if (std::system(quiet.c_str()) != 0) {
      std::fprintf(stderr, "'%s' failed (is iproute2 installed?)\n", command);
      return kSkipExit;
    }
  }
  auto start = [&](const char* address) {
    FaultServerOptions options;
    options.root = root;
    options.bind_address = address;
    auto server = FaultServer::Start(options);
    if (!server.ok()) {
      std::fprintf(stderr, "fault server on %s: %s\n", address,
                   server.status().ToString().c_str());
      std::exit(2);
    }
    return std::move(server).value();
  };
  std::unique_ptr<FaultServer> outer = start("203.0.113.10");
  std::unique_ptr<FaultServer> inner = start("10.9.9.9");
  std::unique_ptr<FaultServer> metadata = start("169.254.169.254");
  const std::string outer_base = "http://203.0.113.10:" + std::to_string(outer->port());
  const std::string inner_url =
      "http://10.9.9.9:" + std::to_string(inner->port()) + "/a.jpg";
  const std::string inner_by_name =
      "http://inward.test:" + std::to_string(inner->port()) + "/a.jpg";
  const std::string metadata_url =
      "http://169.254.169.254:" + std::to_string(metadata->port()) + "/latest/meta-data/";

  FetchOptions options;  // the default rule: public addresses only
  options.retries = 0;
  // Nothing here may end by a timeout: refusals and DNS failures end at once, and
  // an item that waited for a timeout would end as `timeout` instead, which the
  // checks below catch. So the limit is one no loaded machine reaches, not a
  // bound on how fast the answers come.
  options.connect_timeout = std::chrono::seconds(60);
  options.resolve = {"inward.test:" + std::to_string(inner->port()) + ":10.9.9.9"};
  std::map<ItemId, Record> records = FetchAll(
      options, {outer_base + "/a.jpg", outer_base + "/a.jpg?redirect_to=" + inner_url,
                outer_base + "/a.jpg?redirect_to=" + metadata_url, inner_by_name,
                outer_base + "/a.jpg?redirect_to=" + inner_by_name});

  int failures = 0;
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) {
      std::fprintf(stderr, "FAILED: %s\n", what.c_str());
      failures++;
    }
  };
  check(records.size() == 5, "every record came back");
  if (records.size() != 5) return 1;
  check(!records[0].failed(), "the public fixture is fetched: " + records[0].error());
  const char* cases[] = {"", "redirect to a private address",
                         "redirect to the metadata address", "a name resolving inward",
                         "a redirect to a name resolving inward"};
  for (ItemId id = 1; id < 5; ++id) {
    check(records[id].reason() == FailureReason::kForbidden,
          std::string(cases[id]) + " is forbidden, got '" +
              std::string(FailureReasonName(records[id].reason())) +
              "': " + records[id].error());
  }
  check(outer->requests_seen() == 4, "the public fixture saw the 4 first hops, saw " +
                                         std::to_string(outer->requests_seen()));
  check(inner->requests_seen() == 0, "the private fixture saw no request");
  check(metadata->requests_seen() == 0, "the metadata fixture saw no request");

  // Names curl must resolve itself (its resolver thread signals the answer through a
  // socket pair it watches and closes without our close callback): each item ends
  // as a DNS failure, none waits for a timeout. Nothing leaves the namespace.
  std::vector<std::string> unresolvable;
  for (int i = 0; i < 40; ++i) {
    unresolvable.push_back("http://sluice-no-such-host-" + std::to_string(i) +
                           ".invalid/a.jpg");
  }
  unresolvable.push_back(outer_base + "/a.jpg?after=names");
  options.max_in_flight = 2;  // one after another: each socket pair reuses fd numbers
  records = FetchAll(options, unresolvable);
  check(records.size() == unresolvable.size(), "every unresolvable record came back");
  for (const auto& [id, record] : records) {
    const FailureReason expected =
        id + 1 == unresolvable.size() ? FailureReason::kNone : FailureReason::kDns;
    check(record.reason() == expected,
          unresolvable[id] + ": expected '" + std::string(FailureReasonName(expected)) +
              "', got '" + std::string(FailureReasonName(record.reason())) +
              "': " + record.error());
  }
  return failures == 0 ? 0 : 1;
}

TEST(FetchNetnsTest, RedirectsAndDnsAnswersPointingInwardAreRefused) {
  testing::TempDir dir;
  dir.Write("a.jpg", "\xff\xd8\xff\xe0 not really a jpeg");
  std::fflush(nullptr);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(CheckInsideNamespace(dir.path()));
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << WTERMSIG(status);
  if (WEXITSTATUS(status) == kSkipExit) {
    GTEST_SKIP() << "cannot make a network namespace here (needs root and iproute2)";
  }
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see the FAILED lines above";
}

}  // namespace
}  // namespace sluice
