// Workers on different hosts, as far as the network is concerned: three network
// namespaces made by the test (removed after) and joined by veth pairs on a bridge.
// PostgreSQL and the image server run in `db`; one worker in each of two other
// namespaces reaches them over a real network path (10.201.0.0/24), not loopback.
// Each worker takes one partition of the batches, so both must work for the run to
// finish; every item ends with the result a single process gives.
//
// Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and iproute2's `ip`; skipped otherwise.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/fixtures/fault_server.h"
#include "tests/support/postgres_server.h"
#include "tests/test_util.h"

namespace sluice::testing {
namespace {

using std::chrono::seconds;

constexpr int kUrls = 2000;

int Sh(const std::string& command) {
  return std::system((command + " 2>/dev/null").c_str());
}

// Three namespaces on a bridge in the first: db 10.201.0.1, w1 .2, w2 .3.
class Namespaces {
 public:
  Namespaces() : suffix_(std::to_string(getpid())) {}
  ~Namespaces() {
    for (const std::string& name : names_) Sh("ip netns del " + name);
  }
  std::string db() const { return "sl-db-" + suffix_; }
  std::string worker(int n) const { return "sl-w" + std::to_string(n) + "-" + suffix_; }

  // False (and the reason) when this machine cannot make them.
  bool Create(std::string* why) {
    if (geteuid() != 0) return *why = "needs root", false;
    for (const std::string& name : {db(), worker(1), worker(2)}) {
      if (Sh("ip netns add " + name) != 0) return *why = "`ip netns add` failed", false;
      names_.push_back(name);
      if (Sh("ip -n " + name + " link set lo up") != 0) return *why = "lo up", false;
    }
    const std::string bridge = "ip -n " + db() + " ";
    if (Sh(bridge + "link add br0 type bridge") != 0 ||
        Sh(bridge + "link set br0 up") != 0 ||
        Sh(bridge + "addr add 10.201.0.1/24 dev br0") != 0) {
      return *why = "cannot make a bridge", false;
    }
    for (int n = 1; n <= 2; ++n) {
      const std::string outside = "sl" + std::to_string(n) + "a" + suffix_;
      const std::string inside = "sl" + std::to_string(n) + "b" + suffix_;
      const std::string address = "10.201.0." + std::to_string(n + 1) + "/24";
      if (Sh("ip link add " + outside + " netns " + db() + " type veth peer name " +
             inside + " netns " + worker(n)) != 0 ||
          Sh(bridge + "link set " + outside + " master br0") != 0 ||
          Sh(bridge + "link set " + outside + " up") != 0 ||
          Sh("ip -n " + worker(n) + " addr add " + address + " dev " + inside) != 0 ||
          Sh("ip -n " + worker(n) + " link set " + inside + " up") != 0) {
        return *why = "cannot make the veth pairs", false;
      }
    }
    return true;
  }

 private:
  std::string suffix_;
  std::vector<std::string> names_;
};

// Moves this thread (and what it starts from now on: processes, threads) into a
// namespace, and back when destroyed.
class InNamespace {
 public:
  explicit InNamespace(const std::string& name) {
    original_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    const int target = open(("/var/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
    entered_ = original_ >= 0 && target >= 0 && setns(target, CLONE_NEWNET) == 0;
    if (target >= 0) close(target);
  }
  ~InNamespace() {
    if (entered_ && setns(original_, CLONE_NEWNET) != 0) std::abort();  // cannot go on
    if (original_ >= 0) close(original_);
  }
  bool entered() const { return entered_; }

 private:
  int original_ = -1;
  bool entered_ = false;
};

std::string Outcomes(const std::string& jsonl) {
  std::istringstream lines(jsonl);
  std::string out;
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json row = nlohmann::json::parse(line);
    out += row["id"].dump() + " " + row["status"].get<std::string>() + " " +
           row.value("reason", std::string()) + " " + row.value("sha256", std::string()) +
           "\n";
  }
  return out;
}

TEST(ClusterNetnsTest, WorkersInOtherNetworkNamespacesCooperateOverARealNetworkPath) {
  Namespaces namespaces;
  std::string why;
  if (!namespaces.Create(&why)) GTEST_SKIP() << "network namespaces: " << why;
  TempDir dir;
  InNamespace db(namespaces.db());
  ASSERT_TRUE(db.entered());

  PostgresServerOptions pg_options;
  pg_options.listen_addresses = "127.0.0.1,10.201.0.1";
  pg_options.trusted_network = "10.201.0.0/24";
  auto pg = PostgresServer::Start(pg_options);
  ASSERT_TRUE(pg.ok()) << pg.status().ToString();
  auto local_url = (*pg)->CreateDatabase();
  ASSERT_TRUE(local_url.ok()) << local_url.status().ToString();
  // The same database, as the workers reach it.
  std::string remote_url = *local_url;
  remote_url.replace(remote_url.find("127.0.0.1"), 9, "10.201.0.1");

  std::filesystem::create_directories(dir.File("images"));
  dir.Write("images/p.jpg", std::string(3000, 'p'));
  FaultServerOptions web_options;
  web_options.root = dir.File("images");
  web_options.bind_address = "10.201.0.1";
  auto web = FaultServer::Start(web_options);
  ASSERT_TRUE(web.ok()) << web.status().ToString();
  std::string text;
  for (int i = 0; i < kUrls; ++i) {
    text += (*web)->Url(i % 40 == 3 ? "/p.jpg?status=404&i=" + std::to_string(i)
                                    : "/p.jpg?i=" + std::to_string(i)) +
            "\n";
  }
  const std::string input = dir.Write("urls.txt", text);
  const std::vector<std::string> pipeline = {SourceDir() + "/pipelines/download.yaml",
                                             "--set",
                                             "batch_size=100",
                                             "--set",
                                             "allow_private_networks=true",
                                             "--set",
                                             "output.layout=none",
                                             "--set",
                                             "stages.fetch.retries=0"};
  std::vector<std::string> ingest = {"ingest"};
  ingest.insert(ingest.end(), pipeline.begin(), pipeline.end());
  ingest.insert(ingest.end(), {"--input", input, "--store", *local_url});
  CommandResult ingested = RunSluice(ingest, seconds(300));
  ASSERT_EQ(ingested.exit_code, 0) << ingested.err;

  std::vector<std::unique_ptr<SluiceProcess>> workers;
  for (int n = 1; n <= 2; ++n) {
    std::vector<std::string> args = {"worker"};
    args.insert(args.end(), pipeline.begin(), pipeline.end());
    args.insert(args.end(),
                {"--store", remote_url, "--workdir", dir.File("w" + std::to_string(n)),
                 "--partition", std::to_string(n - 1) + "/2", "--exit-when-done",
                 "--status-interval", "0"});
    workers.push_back(
        std::make_unique<SluiceProcess>(args, dir.path(), namespaces.worker(n)));
  }
  for (auto& worker : workers) {
    CommandResult result;
    ASSERT_TRUE(worker->Wait(std::chrono::minutes(5), &result)) << "a worker hung";
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_NE(result.err.find("1000 items processed"), std::string::npos) << result.err;
  }
  CommandResult exported = RunSluice({"export", "--store", *local_url}, seconds(300));
  ASSERT_EQ(exported.exit_code, 0) << exported.err;

  std::vector<std::string> run = {"run"};
  run.insert(run.end(), pipeline.begin(), pipeline.end());
  run.insert(run.end(), {"--input", input, "--workdir", dir.File("single"),
                         "--status-interval", "0"});
  CommandResult single = RunSluice(run, seconds(300));
  ASSERT_EQ(single.exit_code, 0) << single.err;
  CommandResult single_export = RunSluice({"export", "--workdir", dir.File("single")});
  const std::string outcomes = Outcomes(exported.out);
  EXPECT_EQ(std::count(outcomes.begin(), outcomes.end(), '\n'), kUrls);
  EXPECT_EQ(outcomes, Outcomes(single_export.out));
}

}  // namespace
}  // namespace sluice::testing
