// The fetch stage against the project's fault-injecting HTTP server on loopback: one
// test per fault, each checking the item's status and reason.
//
// No test bounds how long anything takes from above: on a loaded machine anything
// may take longer. The limits of PatientOptions() are far beyond what a prompt
// transfer needs; a test of a limit lowers that one limit and tells the limit's
// doing from the server's by the error (a timeout that a slow server ends would
// end in success, not in a timeout), by counts (attempts, the server's requests,
// the I/O threads' wake-ups) or by lower bounds on time.
#include "src/stages/fetch_stage.h"

#include <gtest/gtest.h>

#include <chrono>
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "src/core/runtime.h"
#include "src/stages/image_stages.h"
#include "src/stages/image_test_util.h"
#include "src/stages/map_stage_options_test_util.h"
#include "tests/fixtures/fault_server.h"
#include "tests/support/temp_dir.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using testing::FaultServer;
using testing::FaultServerOptions;
using testing::TempDir;

// Limits that no transfer the fault server serves promptly reaches, however slow
// the machine; short backoffs, so that retries cost the tests little.
FetchOptions PatientOptions() {
  FetchOptions options;
  options.allow_private_networks = true;  // the fixture is on loopback
  options.connect_timeout = std::chrono::seconds(60);
  options.timeout = std::chrono::seconds(60);
  options.item_timeout = std::chrono::minutes(10);
  options.low_speed_seconds = 0;  // off
  options.retries = 1;
  options.retry_base = milliseconds(20);
  options.retry_max = milliseconds(3000);
  options.max_bytes = 1 << 20;
  options.io_threads = 2;  // attempts cross between threads (tests below also run 1)
  return options;
}

// Records that came out of the stage, by item id, and how long the run took (only
// ever compared from below: "it waited at least this long").
struct FetchRun {
  std::map<ItemId, Record> records;
  milliseconds elapsed{0};

  const Record& operator[](ItemId id) const { return records.at(id); }
};

// Runs every URL (item ids 0, 1, ...) through `stages` in one batch.
FetchRun RunStages(std::vector<NamedStage> stages, const std::vector<std::string>& urls,
                   std::vector<std::pair<std::string, std::string>> column = {}) {
  FetchRun run;
  std::mutex mu;
  Runtime runtime(RuntimeOptions{}, std::move(stages),
                  [&](BatchId, std::vector<Record> records) {
                    std::lock_guard lock(mu);
                    for (Record& record : records) {
                      const ItemId id = record.id();
                      run.records.emplace(id, std::move(record));
                    }
                  });
  EXPECT_TRUE(runtime.Start().ok());
  std::vector<Record> batch;
  for (std::size_t i = 0; i < urls.size(); ++i) {
    batch.emplace_back(i, urls[i]);
    for (const auto& [name, text] : column) batch.back().AddColumn(name, text);
  }
  const Clock::time_point start = Clock::now();
  EXPECT_TRUE(runtime.Submit(1, std::move(batch)).ok());
  runtime.Finish();
  run.elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  EXPECT_EQ(run.records.size(), urls.size());
  return run;
}

FetchRun Fetch(const FetchOptions& options, const std::vector<std::string>& urls,
               std::vector<std::pair<std::string, std::string>> column = {}) {
  std::vector<NamedStage> stages;
  stages.push_back(NamedStage{"fetch", std::make_unique<FetchStage>(options)});
  return RunStages(std::move(stages), urls, std::move(column));
}

std::int64_t IntField(const Record& record, const std::string& name) {
  const Value* value = record.Find(name);
  if (value == nullptr || !std::holds_alternative<std::int64_t>(*value)) return -1;
  return std::get<std::int64_t>(*value);
}

std::string TextField(const Record& record, const std::string& name) {
  const Value* value = record.Find(name);
  if (value == nullptr || !std::holds_alternative<std::string>(*value)) return {};
  return std::get<std::string>(*value);
}

class FetchStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    jpeg_ = testing::Encode(testing::Gradient(320, 240), ".jpg");
    dir_.Write("cat.jpg", std::string(jpeg_.begin(), jpeg_.end()));
    FaultServerOptions options;
    options.root = dir_.path();
    auto server = FaultServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
  }

  std::string Url(const std::string& path_and_query) const {
    return server_->Url(path_and_query);
  }

  // Fetches one URL and checks the reason.
  Record FetchOne(const std::string& path_and_query, FailureReason expected,
                  FetchOptions options = PatientOptions()) {
    FetchRun run = Fetch(options, {Url(path_and_query)});
    const Record& record = run[0];
    EXPECT_EQ(FailureReasonName(record.reason()), FailureReasonName(expected))
        << path_and_query << ": " << record.error();
    return record;
  }

  TempDir dir_;
  Bytes jpeg_;
  std::unique_ptr<FaultServer> server_;
};

TEST_F(FetchStageTest, DownloadsTheFileAndItsMetadata) {
  Record record = FetchOne("/cat.jpg", FailureReason::kNone);
  const Value* body = record.Find("body");
  ASSERT_NE(body, nullptr);
  EXPECT_EQ(std::get<Bytes>(*body), jpeg_);
  EXPECT_EQ(IntField(record, "http_status"), 200);
  EXPECT_EQ(TextField(record, "content_type"), "image/jpeg");
  EXPECT_EQ(IntField(record, "bytes"), static_cast<std::int64_t>(jpeg_.size()));
  EXPECT_EQ(IntField(record, "attempts"), 1);
  EXPECT_GE(IntField(record, "download_ms"), 0);
  EXPECT_EQ(record.Find("final_url"), nullptr);
}

TEST_F(FetchStageTest, Delay) {
  // A delay within the attempt's timeout is only slow...
  Record slow = FetchOne("/cat.jpg?delay=200", FailureReason::kNone);
  EXPECT_GE(IntField(slow, "download_ms"), 200);
  EXPECT_EQ(IntField(slow, "attempts"), 1);
  // ...one past it times out, on every attempt. The server would answer after 10 s:
  // an item that waited for it would succeed; one ended by the timeout says so.
  FetchOptions options = PatientOptions();
  options.timeout = milliseconds(1500);
  Record record = FetchOne("/cat.jpg?delay=10000", FailureReason::kTimeout, options);
  EXPECT_NE(record.error().find("timed out"), std::string::npos) << record.error();
  EXPECT_NE(record.error().find("2 attempts"), std::string::npos) << record.error();
}

TEST_F(FetchStageTest, SlowDripTimesOut) {
  FetchOptions options = PatientOptions();
  options.retries = 0;
  options.low_speed_bytes = 1000;
  options.low_speed_seconds = 1;
  // 100 bytes/s is under the 1000 bytes/s floor kept for 1 s. The whole image would
  // take over a minute at that rate (the attempt's timeout is a minute): the error
  // says it was the speed floor that ended it.
  ASSERT_GT(jpeg_.size(), 6000u);
  Record record = FetchOne("/cat.jpg?drip=100", FailureReason::kTimeout, options);
  EXPECT_NE(record.error().find("too slow"), std::string::npos) << record.error();
}

TEST_F(FetchStageTest, ConnectionResetIsRetriedThenFails) {
  Record record = FetchOne("/cat.jpg?reset", FailureReason::kConnect);
  EXPECT_NE(record.error().find("2 attempts"), std::string::npos) << record.error();
}

TEST_F(FetchStageTest, ServerErrorsAreRetried) {
  Record record = FetchOne("/cat.jpg?status=503", FailureReason::kHttp5xx);
  EXPECT_NE(record.error().find("HTTP 503"), std::string::npos) << record.error();
  EXPECT_NE(record.error().find("2 attempts"), std::string::npos) << record.error();
}

TEST_F(FetchStageTest, ClientErrorsAreNotRetried) {
  Record record = FetchOne("/cat.jpg?status=404", FailureReason::kHttp4xx);
  EXPECT_EQ(record.error(), "HTTP 404");  // one attempt: no "(after N attempts)"
  FetchOne("/missing.jpg", FailureReason::kHttp4xx);
  EXPECT_EQ(server_->requests_seen(), 2u);
}

TEST_F(FetchStageTest, TooManyRequestsHonoursRetryAfter) {
  FetchRun run = Fetch(PatientOptions(), {Url("/cat.jpg?status=429&retry_after=1")});
  const Record& record = run[0];
  EXPECT_EQ(record.reason(), FailureReason::kHttp4xx) << record.error();
  // The one retry waited the second the server asked for, not the 20 ms backoff.
  EXPECT_GE(run.elapsed, milliseconds(1000));
  EXPECT_NE(record.error().find("2 attempts"), std::string::npos) << record.error();
}

TEST_F(FetchStageTest, TooManyRequestsThenOkOnTheRetry) {
  // The server answers this URL's first request 429 (Retry-After: 1 s), the next 200.
  FetchRun run =
      Fetch(PatientOptions(), {Url("/cat.jpg?status=429&retry_after=1&status_times=1")});
  const Record& record = run[0];
  EXPECT_FALSE(record.failed()) << record.error();
  EXPECT_EQ(IntField(record, "attempts"), 2);
  EXPECT_EQ(IntField(record, "http_status"), 200);
  EXPECT_EQ(IntField(record, "bytes"), static_cast<std::int64_t>(jpeg_.size()));
  EXPECT_GE(run.elapsed, milliseconds(1000));
  EXPECT_EQ(server_->requests_seen(), 2u);
}

TEST_F(FetchStageTest, RetryAfterOverTheCapIsNotWaitedFor) {
  // Not waited for: the item fails after its one attempt (the error would say
  // "after 2 attempts" had it waited the hour and tried again).
  Record record =
      FetchOne("/cat.jpg?status=429&retry_after=3600", FailureReason::kHttp4xx);
  EXPECT_NE(record.error().find("retry_max_ms"), std::string::npos) << record.error();
  EXPECT_EQ(record.error().find("attempts"), std::string::npos) << record.error();
  EXPECT_EQ(server_->requests_seen(), 1u);
}

TEST_F(FetchStageTest, RedirectChainIsFollowed) {
  Record record = FetchOne("/cat.jpg?redirect=3", FailureReason::kNone);
  EXPECT_EQ(IntField(record, "bytes"), static_cast<std::int64_t>(jpeg_.size()));
  EXPECT_NE(TextField(record, "final_url").find("redirect=0"), std::string::npos);
}

TEST_F(FetchStageTest, RedirectsOverTheCapFail) {
  FetchOne("/cat.jpg?redirect=8", FailureReason::kTooManyRedirects);
  FetchOne("/cat.jpg?redirect_loop", FailureReason::kTooManyRedirects);
}

TEST_F(FetchStageTest, RedirectToLoopbackIsFollowedWhenAllowed) {
  const std::string target = server_->Url("/cat.jpg");  // 127.0.0.1: loopback
  FetchOne("/x?redirect_to=" + target, FailureReason::kNone);
}

TEST_F(FetchStageTest, RedirectToAnotherSchemeIsForbidden) {
  Record record =
      FetchOne("/x?redirect_to=file:///etc/passwd", FailureReason::kForbidden);
  EXPECT_EQ(record.Find("body"), nullptr);
}

TEST_F(FetchStageTest, EndlessBodyStopsAtMaxBytes) {
  Record record = FetchOne("/cat.jpg?endless", FailureReason::kTooLarge);
  EXPECT_NE(record.error().find("max_bytes"), std::string::npos) << record.error();
}

TEST_F(FetchStageTest, ContentLengthOverMaxBytesFailsBeforeTheBody) {
  FetchOptions options = PatientOptions();
  options.max_bytes = 1000;
  Record record = FetchOne("/gen/bytes?size=50000&content_type=image/jpeg",
                           FailureReason::kTooLarge, options);
  EXPECT_NE(record.error().find("Content-Length 50000"), std::string::npos)
      << record.error();
}

TEST_F(FetchStageTest, WrongContentTypeIsNotAnImage) {
  Record record = FetchOne("/cat.jpg?content_type=text/html", FailureReason::kNotImage);
  EXPECT_NE(record.error().find("text/html"), std::string::npos) << record.error();
  FetchOptions any = PatientOptions();
  any.content_types = {};
  FetchOne("/cat.jpg?content_type=text/html", FailureReason::kNone, any);
}

TEST_F(FetchStageTest, TruncatedBodyFails) {
  FetchOne("/cat.jpg?truncate=100", FailureReason::kConnect);
}

TEST_F(FetchStageTest, ZeroBytesReachDecodeAsNotAnImage) {
  Record fetched = FetchOne("/cat.jpg?empty", FailureReason::kNone);
  EXPECT_EQ(IntField(fetched, "bytes"), 0);
  auto decode = testing::BuildImageStage("decode", {});
  ASSERT_TRUE(decode.ok());
  std::vector<NamedStage> stages;
  stages.push_back(NamedStage{"fetch", std::make_unique<FetchStage>(PatientOptions())});
  stages.push_back(NamedStage{"decode", std::move(decode).value()});
  FetchRun run = RunStages(std::move(stages), {Url("/cat.jpg?empty")});
  EXPECT_EQ(run[0].reason(), FailureReason::kNotImage) << run[0].error();
}

TEST_F(FetchStageTest, NonImageBytesAndPixelBombsFailInDecode) {
  auto decode = testing::BuildImageStage("decode", {});
  ASSERT_TRUE(decode.ok());
  std::vector<NamedStage> stages;
  stages.push_back(NamedStage{"fetch", std::make_unique<FetchStage>(PatientOptions())});
  stages.push_back(NamedStage{"decode", std::move(decode).value()});
  FetchRun run = RunStages(
      std::move(stages),
      {Url("/gen/not_image"), Url("/gen/huge_png"), Url("/cat.jpg?truncate=600")});
  EXPECT_EQ(run[0].reason(), FailureReason::kNotImage) << run[0].error();
  EXPECT_EQ(run[1].reason(), FailureReason::kTooLarge) << run[1].error();
  EXPECT_EQ(run[2].reason(), FailureReason::kConnect) << run[2].error();
  // The pixel bomb was refused on its header (too_large names the declared size);
  // decoding it would have needed 30 GB, not time.
  EXPECT_NE(run[1].error().find("100000x100000"), std::string::npos) << run[1].error();
}

TEST_F(FetchStageTest, RobotsOptOutIsCheckedOnTheHeaders) {
  Record record = FetchOne("/cat.jpg?robots=noai", FailureReason::kOptOut);
  EXPECT_NE(record.error().find("noai"), std::string::npos) << record.error();
  EXPECT_EQ(record.Find("body"), nullptr);
  FetchOne("/cat.jpg?robots=otherbot:%20noai", FailureReason::kNone);
  FetchOptions ignore = PatientOptions();
  ignore.robots_directives = {};
  FetchOne("/cat.jpg?robots=noai", FailureReason::kNone, ignore);
}

TEST_F(FetchStageTest, RefusesLoopbackByDefaultWithoutSendingARequest) {
  FetchOptions options = PatientOptions();
  options.allow_private_networks = false;
  FetchRun run = Fetch(
      options, {Url("/cat.jpg"),
                "http://localhost:" + std::to_string(server_->port()) + "/cat.jpg"});
  for (const auto& [id, record] : run.records) {
    EXPECT_EQ(record.reason(), FailureReason::kForbidden) << record.error();
    EXPECT_NE(record.error().find("allow_private_networks"), std::string::npos);
  }
  EXPECT_EQ(server_->requests_seen(), 0u);
  EXPECT_EQ(server_->open_connections(), 0u);
}

TEST_F(FetchStageTest, BadUrlsAndSchemes) {
  FetchRun run = Fetch(PatientOptions(), {"not a url", "ftp://example.com/a.jpg",
                                          "file:///etc/passwd", "http://", ""});
  EXPECT_EQ(run[0].reason(), FailureReason::kInvalidUrl) << run[0].error();
  EXPECT_EQ(run[1].reason(), FailureReason::kForbidden) << run[1].error();
  EXPECT_NE(run[1].error().find("'ftp'"), std::string::npos) << run[1].error();
  EXPECT_EQ(run[2].reason(), FailureReason::kForbidden) << run[2].error();
  EXPECT_EQ(run[3].reason(), FailureReason::kInvalidUrl) << run[3].error();
  EXPECT_EQ(run[4].reason(), FailureReason::kInvalidUrl) << run[4].error();
}

TEST_F(FetchStageTest, ConnectionRefused) {
  // Port 1 on loopback: nothing listens there. The refusal ends each attempt (a
  // connection that waited for the minute's connect timeout would end as timeout).
  FetchRun run = Fetch(PatientOptions(), {"http://127.0.0.1:1/x.jpg"});
  EXPECT_EQ(run[0].reason(), FailureReason::kConnect) << run[0].error();
  EXPECT_NE(run[0].error().find("2 attempts"), std::string::npos) << run[0].error();
}

TEST_F(FetchStageTest, PerHostCapLimitsConcurrentTransfers) {
  for (std::size_t threads : {1, 3}) {
    FetchOptions options = PatientOptions();
    options.io_threads = threads;
    options.max_host_connections = 2;
    std::vector<std::string> urls;
    for (int i = 0; i < 10; ++i)
      urls.push_back(Url("/cat.jpg?delay=100&n=" + std::to_string(i)));
    FetchRun run = Fetch(options, urls);
    for (const auto& [id, record] : run.records)
      EXPECT_FALSE(record.failed()) << record.error();
    // Two at a time across all threads, 100 ms each: five rounds at least.
    EXPECT_GE(run.elapsed, milliseconds(500)) << threads << " I/O threads";
  }
}

std::uint64_t CounterNamed(const FetchStage& stage, const std::string& name) {
  for (const auto& [counter, value] : stage.Counters()) {
    if (counter == name) return value;
  }
  return ~std::uint64_t{0};  // not there
}

// While transfers hang, Counters() tells how many are active and waiting per host
// (the view is remade every second even when nothing moves); once they end, none.
TEST_F(FetchStageTest, CountersTellTransfersPerHostWhileTheyHang) {
  FetchOptions options = PatientOptions();
  options.max_host_connections = 2;
  auto owned = std::make_unique<FetchStage>(options);
  FetchStage& stage = *owned;
  std::vector<NamedStage> stages;
  stages.push_back(NamedStage{"fetch", std::move(owned)});
  std::atomic<std::size_t> done{0};
  Runtime runtime(RuntimeOptions{}, std::move(stages),
                  [&](BatchId, std::vector<Record> records) { done += records.size(); });
  ASSERT_TRUE(runtime.Start().ok());
  std::vector<Record> batch;
  for (int i = 0; i < 6; ++i) {
    batch.emplace_back(i, Url("/cat.jpg?delay=3000&n=" + std::to_string(i)));
  }
  ASSERT_TRUE(runtime.Submit(1, std::move(batch)).ok());
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(30);
  bool seen = false;
  while (!seen && Clock::now() < deadline) {
    seen = CounterNamed(stage, "fetch_host_active{host=127.0.0.1}") == 2 &&
           CounterNamed(stage, "fetch_host_waiting{host=127.0.0.1}") == 4 &&
           CounterNamed(stage, "fetch_hosts_active") == 1 &&
           CounterNamed(stage, "fetch_hosts_waiting") == 1;
    if (!seen) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(seen) << "2 active and 4 waiting for 127.0.0.1 never told";
  EXPECT_EQ(CounterNamed(stage, "fetch_transfers{phase=attempt}"), 2u);
  EXPECT_EQ(CounterNamed(stage, "fetch_transfers{phase=queued}"), 4u);
  runtime.Finish();
  EXPECT_EQ(done.load(), 6u);
  EXPECT_EQ(CounterNamed(stage, "fetch_hosts_active"), 0u);
  EXPECT_EQ(CounterNamed(stage, "fetch_host_active{host=127.0.0.1}"), ~std::uint64_t{0});
  EXPECT_EQ(CounterNamed(stage, "fetch_transfers{phase=attempt}"), 0u);
}

TEST_F(FetchStageTest, ThousandsInFlightAllComplete) {
  for (std::size_t threads : {1, 2}) {
    FetchOptions options = PatientOptions();
    options.io_threads = threads;
    options.max_host_connections = 64;
    options.max_in_flight = 5000;  // all at once: most wait in the host's queue
    std::vector<std::string> urls;
    for (int i = 0; i < 3000; ++i) urls.push_back(Url("/cat.jpg?n=" + std::to_string(i)));
    FetchRun run = Fetch(options, urls);
    std::size_t ok = 0;
    for (const auto& [id, record] : run.records) {
      ok += record.failed() ? 0 : 1;
      if (!record.failed()) {
        EXPECT_EQ(std::get<Bytes>(*record.Find("body")), jpeg_) << id;
      }
    }
    EXPECT_EQ(ok, urls.size()) << threads << " I/O threads";
  }
}

TEST_F(FetchStageTest, RetriesCanMoveBetweenThreads) {
  // Three attempts per record on four threads: a record's attempts may run on
  // different threads, and each record still completes once, after all three.
  FetchOptions options = PatientOptions();
  options.io_threads = 4;
  options.retries = 2;
  std::vector<std::string> urls;
  for (int i = 0; i < 40; ++i) {
    urls.push_back(Url("/cat.jpg?status=503&n=" + std::to_string(i)));
  }
  FetchRun run = Fetch(options, urls);
  ASSERT_EQ(run.records.size(), urls.size());
  for (const auto& [id, record] : run.records) {
    EXPECT_EQ(record.reason(), FailureReason::kHttp5xx) << id;
    EXPECT_NE(record.error().find("3 attempts"), std::string::npos) << record.error();
  }
}

TEST_F(FetchStageTest, IdleConnectionsTheServerClosesAreReplaced) {
  // Keep-alive connections stay in the I/O threads' epoll sets between transfers.
  // When the server closes them while idle, the run must neither spin on their
  // end-of-file nor fail later transfers: new connections take their place.
  FetchOptions options = PatientOptions();
  options.retries = 0;  // a transfer sent on a dead connection must not need one
  constexpr ItemId kPerBatch = 40;
  std::mutex mu;
  std::condition_variable cv;
  std::map<ItemId, Record> records;
  std::vector<NamedStage> stages;
  auto fetch = std::make_unique<FetchStage>(options);
  const FetchStage* stage = fetch.get();
  stages.push_back(NamedStage{"fetch", std::move(fetch)});
  Runtime runtime(RuntimeOptions{}, std::move(stages),
                  [&](BatchId, std::vector<Record> batch) {
                    std::lock_guard lock(mu);
                    for (Record& record : batch) {
                      records.emplace(record.id(), std::move(record));
                    }
                    cv.notify_all();
                  });
  ASSERT_TRUE(runtime.Start().ok());
  auto submit = [&](BatchId batch_id, ItemId first) {
    std::vector<Record> batch;
    for (ItemId id = first; id < first + kPerBatch; ++id) {
      batch.emplace_back(id, Url("/cat.jpg?n=" + std::to_string(id)));
    }
    ASSERT_TRUE(runtime.Submit(batch_id, std::move(batch)).ok());
    std::unique_lock lock(mu);
    // A deadline against a hang only.
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60),
                            [&] { return records.size() == first + kPerBatch; }));
  };
  submit(1, 0);
  const std::uint16_t port = server_->port();
  const std::uint64_t wakeups_before = stage->io_wakeups();
  server_->Stop();  // closes every connection, idle ones included

  // What the I/O threads do about it, counted in wake-ups of their loops (not in
  // CPU time, which a busy machine inflates): each closed connection may wake its
  // thread once, to be dropped; a loop that kept its end-of-file in the epoll set
  // would wake again and again, thousands of times in this window. There were at
  // most kPerBatch connections. A slow machine only lets a spinning loop wake fewer
  // times: it cannot make a correct one fail.
  std::this_thread::sleep_for(milliseconds(300));  // the window watched
  const std::uint64_t wakeups = stage->io_wakeups() - wakeups_before;
  EXPECT_LE(wakeups, kPerBatch + 4) << "the I/O threads spin on closed connections";

  FaultServerOptions again;
  again.root = dir_.path();
  again.port = port;
  auto server = FaultServer::Start(again);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  server_ = std::move(server).value();
  submit(2, kPerBatch);
  runtime.Finish();
  ASSERT_EQ(records.size(), 2 * kPerBatch);
  for (const auto& [id, record] : records) {
    EXPECT_FALSE(record.failed()) << id << ": " << record.error();
  }
}

TEST(FetchStageOptionsTest, ReadsAndChecksItsOptions) {
  StageRegistry registry;
  ASSERT_TRUE(RegisterFetchStage(registry).ok());
  const StageFactory* factory = registry.Find("fetch");
  ASSERT_NE(factory, nullptr);
  {
    testing::MapStageOptions options(
        {{"max_host_connections", "3"}, {"retries", "4"}, {"io_threads", "2"}});
    PipelineSettings settings;
    settings.allow_private_networks = true;
    options.set_pipeline(settings);
    auto stage = (*factory)(options);
    ASSERT_TRUE(stage.ok());
    ASSERT_TRUE(options.Finish().ok());
    const auto& fetch = static_cast<const FetchStage&>(**stage);
    EXPECT_EQ(fetch.options().max_host_connections, 3u);
    EXPECT_EQ(fetch.options().retries, 4);
    EXPECT_EQ(fetch.options().io_threads, 2u);
    EXPECT_TRUE(fetch.options().allow_private_networks);
  }
  {
    testing::MapStageOptions options(std::map<std::string, std::string>{});
    auto stage = (*factory)(options);
    ASSERT_TRUE(stage.ok());
    EXPECT_FALSE(
        static_cast<const FetchStage&>(**stage).options().allow_private_networks);
  }
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"retries", "-1"},
                                                        {"max_bytes", "0"},
                                                        {"user_agent", ""},
                                                        {"resolve", "nohost"},
                                                        {"retry_base_ms", "99999999"},
                                                        {"timeout_ms", "x"},
                                                        {"io_threads", "0"}}) {
    testing::MapStageOptions options(std::map<std::string, std::string>{{key, value}});
    auto stage = (*factory)(options);
    Status finished = options.Finish();
    EXPECT_FALSE(finished.ok()) << key << "=" << value;
    EXPECT_NE(finished.message().find(key), std::string::npos) << finished.message();
  }
}

}  // namespace
}  // namespace sluice
