// sluice-pg-scale: what the PostgreSQL store costs per item at scale, measured on a
// throwaway server on loopback (durable: fsync on), to extrapolate to billions of
// items in docs/scale.md.
//
//   sluice-pg-scale [ITEMS [WORKERS...]]     (default 1000000 items; workers 1 2 4)
//
// 1. Ingests ITEMS URLs (about 45 bytes each, no extra columns) in AppendItems calls of
//    10,000 items, batches of 1,000: items/s.
// 2. For each worker count W: W threads, each with its own store (connection), lease
//    one batch at a time, read it and commit 1,000 ok results with a 200-byte
//    fields_json each (about what the faces pipeline writes), until every batch is
//    done: commits/s, and the server's CPU (user + system of every server process,
//    from /proc) per commit and per item. Each worker count has its own stage group
//    (w1, w2, ...), whose batches become pending as the previous group commits them,
//    so each run commits every batch afresh. Also the latency of each lease call
//    and each commit call (p50 and p99, ms), as a worker sees it.
// 3. The size of every table and index, per item.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sluice/store.h"
#include "src/store/pg_conn.h"
#include "src/store/postgres_store.h"
#include "tests/support/postgres_server.h"

namespace {

using sluice::Status;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// The `q` quantile (0..1) of `values`, nearest rank; 0 for none.
double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto rank =
      static_cast<std::size_t>(q * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(rank, values.size() - 1)];
}

// User + system CPU seconds of the server: the postmaster (named by `data_dir`'s
// postmaster.pid), the processes it started that still run (backends, helpers), and
// those that ended (the postmaster's children times).
double ServerCpuSeconds(const std::string& data_dir) {
  std::ifstream pid_file(data_dir + "/postmaster.pid");
  long postmaster = 0;
  pid_file >> postmaster;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  double total = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string text;
    if (!std::getline(stat, text)) continue;
    const std::size_t close = text.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(text.substr(close + 2));
    std::string state;
    long ppid = 0;
    fields >> state >> ppid;
    const long pid = std::stol(name);
    if (pid != postmaster && ppid != postmaster) continue;
    std::string skip;
    for (int i = 0; i < 9; ++i) fields >> skip;  // fields 5 to 13, before utime (14)
    double utime = 0, stime = 0, cutime = 0, cstime = 0;
    fields >> utime >> stime >> cutime >> cstime;
    total += (utime + stime) / ticks;
    // Backends that ended were reaped by the postmaster: their time is its children's.
    if (pid == postmaster) total += (cutime + cstime) / ticks;
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t items = argc > 1 ? std::stoll(argv[1]) : 1'000'000;
  std::vector<int> worker_counts;
  for (int i = 2; i < argc; ++i) worker_counts.push_back(std::stoi(argv[i]));
  if (worker_counts.empty()) worker_counts = {1, 2, 4};
  constexpr std::uint32_t kBatch = 1000;
  constexpr std::int64_t kPerCall = 10'000;

  sluice::testing::PostgresServerOptions server_options;
  server_options.durable = true;
  auto server = sluice::testing::PostgresServer::Start(server_options);
  if (!server.ok()) {
    std::cerr << "sluice-pg-scale: " << server.status().ToString() << "\n";
    return 1;
  }
  auto url = (*server)->CreateDatabase();
  if (!url.ok()) {
    std::cerr << "sluice-pg-scale: " << url.status().ToString() << "\n";
    return 1;
  }
  // One stage group per worker count, so that each run commits every batch afresh.
  std::vector<std::string> groups;
  for (int workers : worker_counts) groups.push_back(fmt::format("w{}", workers));

  auto store = sluice::OpenPostgresStore(*url);
  if (!store.ok()) {
    std::cerr << "sluice-pg-scale: " << store.status().ToString() << "\n";
    return 1;
  }
  auto input = (*store)->BeginInput({"urls.txt", 1, "scale"});
  if (!input.ok()) return 1;
  std::vector<sluice::ItemRow> rows(kPerCall);
  const double cpu_before_ingest = ServerCpuSeconds((*server)->data_dir());
  const auto ingest_start = Clock::now();
  for (std::int64_t done = 0; done < items; done += kPerCall) {
    const std::int64_t count = std::min(kPerCall, items - done);
    rows.resize(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) {
      rows[static_cast<std::size_t>(i)].url = fmt::format(
          "http://host-{}.example.com/images/{}.jpg", (done + i) % 5000, done + i);
    }
    Status status =
        (*store)->AppendItems(input->input_id, rows, {},
                              static_cast<std::uint64_t>(done + count), kBatch, groups);
    if (!status.ok()) {
      std::cerr << "sluice-pg-scale: " << status.ToString() << "\n";
      return 1;
    }
  }
  const double ingest_s = Seconds(ingest_start);
  const double ingest_cpu = ServerCpuSeconds((*server)->data_dir()) - cpu_before_ingest;
  fmt::print(
      "ingest: {} items in {:.1f} s = {:.0f} items/s; server CPU {:.2f} s ({:.2f} "
      "us/item)\n",
      items, ingest_s, items / ingest_s, ingest_cpu, ingest_cpu / items * 1e6);

  const std::string fields = R"({"pad":")" + std::string(190, 'x') + R"("})";
  fmt::print(
      "\n| workers | commits/s | items/s | server CPU per commit (ms) | server CPU per "
      "item (us) | lease p50 / p99 (ms) | commit p50 / p99 (ms) |\n"
      "|---|---|---|---|---|---|---|\n");
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const int workers = worker_counts[g];
    std::atomic<std::int64_t> commits{0};
    std::atomic<bool> failed{false};
    std::mutex latency_mutex;
    std::vector<double> lease_ms, commit_ms;  // guarded by latency_mutex
    const double cpu_before = ServerCpuSeconds((*server)->data_dir());
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) {
      threads.emplace_back([&, w] {
        auto mine = sluice::OpenPostgresStore(*url);
        if (!mine.ok()) {
          failed = true;
          return;
        }
        const std::string owner = fmt::format("w{}-{}", workers, w);
        std::vector<sluice::ResultRow> results;
        std::vector<double> my_lease_ms, my_commit_ms;
        for (;;) {
          const auto lease_start = Clock::now();
          auto leases =
              (*mine)->LeaseBatches(groups[g], owner, 1, std::chrono::minutes(5));
          my_lease_ms.push_back(Seconds(lease_start) * 1e3);
          if (!leases.ok()) {
            failed = true;
            return;
          }
          if (leases->empty()) break;
          auto records = (*mine)->ReadBatchItems(leases->front());
          if (!records.ok()) {
            failed = true;
            return;
          }
          results.clear();
          for (const sluice::Record& record : *records) {
            results.push_back({record.id(), sluice::FailureReason::kNone, "", fields});
          }
          const auto commit_start = Clock::now();
          if (!(*mine)->CommitBatch(leases->front(), results).ok()) {
            failed = true;
            return;
          }
          my_commit_ms.push_back(Seconds(commit_start) * 1e3);
          ++commits;
        }
        std::lock_guard lock(latency_mutex);
        lease_ms.insert(lease_ms.end(), my_lease_ms.begin(), my_lease_ms.end());
        commit_ms.insert(commit_ms.end(), my_commit_ms.begin(), my_commit_ms.end());
      });
    }
    for (std::thread& thread : threads) thread.join();
    const double seconds = Seconds(start);
    const double cpu = ServerCpuSeconds((*server)->data_dir()) - cpu_before;
    if (failed) {
      std::cerr << "sluice-pg-scale: a worker failed\n";
      return 1;
    }
    const double n = static_cast<double>(commits.load());
    fmt::print(
        "| {} | {:.0f} | {:.0f} | {:.2f} | {:.2f} | {:.1f} / {:.1f} | {:.1f} / {:.1f} "
        "|\n",
        workers, n / seconds, n * kBatch / seconds, cpu / n * 1e3,
        cpu / (n * kBatch) * 1e6, Percentile(lease_ms, 0.5), Percentile(lease_ms, 0.99),
        Percentile(commit_ms, 0.5), Percentile(commit_ms, 0.99));
  }

  auto conn = sluice::pg::PgConn::Connect(*url);
  if (!conn.ok()) return 1;
  auto sizes = (*conn)->Exec(
      "SELECT c.relname, c.relkind, pg_relation_size(c.oid) FROM pg_class c "
      "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND "
      "c.relkind IN ('r', 'i') ORDER BY pg_relation_size(c.oid) DESC");
  if (!sizes.ok()) return 1;
  const double result_rows =
      static_cast<double>(items) * static_cast<double>(groups.size());
  fmt::print(
      "\n| relation | kind | bytes | bytes per item | bytes per result row "
      "|\n|---|---|---|---|---|\n");
  for (int row = 0; row < sizes->rows(); ++row) {
    const double bytes = static_cast<double>(sizes->Int(row, 2));
    fmt::print("| {} | {} | {:.0f} | {:.1f} | {:.1f} |\n", sizes->Text(row, 0),
               sizes->Text(row, 1) == "r" ? "table" : "index", bytes, bytes / items,
               bytes / result_rows);
  }
  return 0;
}
