// The fetch stage with its content cache (src/cache/), against the fault server and
// real memcached servers on loopback: what a cache hit writes, that a URL seen again
// costs no request, and that a cache that does not answer costs only downloads.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "src/core/runtime.h"
#include "src/stages/fetch_stage.h"
#include "src/stages/image_test_util.h"
#include "src/stages/map_stage_options_test_util.h"
#include "tests/fixtures/fault_server.h"
#include "tests/support/memcached_server.h"
#include "tests/support/temp_dir.h"

namespace sluice {
namespace {

using testing::FaultServer;
using testing::FaultServerOptions;
using testing::MemcachedServer;
using testing::TempDir;

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

Bytes BodyField(const Record& record) {
  const Value* value = record.Find("body");
  if (value == nullptr || !std::holds_alternative<Bytes>(*value)) return {};
  return std::get<Bytes>(*value);
}

std::uint64_t CounterOf(const Stage& stage, const std::string& name) {
  for (const auto& [key, value] : stage.Counters()) {
    if (key == name) return value;
  }
  ADD_FAILURE() << "no counter " << name;
  return 0;
}

class FetchCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    jpeg_ = testing::Encode(testing::Gradient(64, 48), ".jpg");
    files_.Write("cat.jpg", std::string(jpeg_.begin(), jpeg_.end()));
    auto server = FaultServer::Start(FaultServerOptions{.root = files_.path()});
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
  }

  FetchOptions Options(const std::string& cache_dir,
                       std::vector<std::string> memcached = {}) const {
    FetchOptions options;
    options.allow_private_networks = true;  // the fixture is on loopback
    options.retries = 0;
    options.cache_dir = cache_dir;
    options.memcached = std::move(memcached);
    return options;
  }

  // Runs `urls` (item ids 0, 1, ...) through a fetch stage of `options`, in one
  // batch; returns the records by id. The stage is left in `stage_`.
  std::map<ItemId, Record> Run(const FetchOptions& options,
                               const std::vector<std::string>& urls) {
    auto cache = OpenFetchCache(options);
    EXPECT_TRUE(cache.ok()) << cache.status().ToString();
    auto stage = std::make_unique<FetchStage>(options, cache.ok() ? *cache : nullptr);
    stage_ = stage.get();
    std::vector<NamedStage> stages;
    stages.push_back(NamedStage{"fetch", std::move(stage)});
    std::map<ItemId, Record> records;
    std::mutex mu;
    runtime_ = std::make_unique<Runtime>(RuntimeOptions{}, std::move(stages),
                                         [&](BatchId, std::vector<Record> done) {
                                           std::lock_guard lock(mu);
                                           for (Record& record : done) {
                                             const ItemId id = record.id();
                                             records.emplace(id, std::move(record));
                                           }
                                         });
    EXPECT_TRUE(runtime_->Start().ok());
    std::vector<Record> batch;
    for (std::size_t i = 0; i < urls.size(); ++i) batch.emplace_back(i, urls[i]);
    EXPECT_TRUE(runtime_->Submit(1, std::move(batch)).ok());
    runtime_->Finish();
    EXPECT_EQ(records.size(), urls.size());
    return records;
  }

  void ExpectTheImage(const Record& record, const std::string& cache) const {
    EXPECT_FALSE(record.failed()) << record.error();
    EXPECT_EQ(BodyField(record), jpeg_);
    EXPECT_EQ(IntField(record, "http_status"), 200);
    EXPECT_EQ(TextField(record, "content_type"), "image/jpeg");
    EXPECT_EQ(IntField(record, "bytes"), static_cast<std::int64_t>(jpeg_.size()));
    EXPECT_EQ(TextField(record, "cache"), cache);
    EXPECT_EQ(IntField(record, "attempts"), cache.empty() ? 1 : 0);
    EXPECT_GE(IntField(record, "download_ms"), 0);
  }

  TempDir files_;
  TempDir cache_dir_;
  Bytes jpeg_;
  std::unique_ptr<FaultServer> server_;
  std::unique_ptr<Runtime> runtime_;  // of the last Run(), which holds stage_
  FetchStage* stage_ = nullptr;
};

TEST_F(FetchCacheTest, ASecondRunIsServedFromTheDisk) {
  const std::string url = server_->Url("/cat.jpg");
  ExpectTheImage(Run(Options(cache_dir_.path()), {url})[0], "");
  EXPECT_EQ(server_->requests_seen(), 1u);
  runtime_.reset();  // a stage's stores are done when it is gone

  // Another run (another detector after fetch would not change the key).
  std::map<ItemId, Record> again = Run(Options(cache_dir_.path()), {url});
  ExpectTheImage(again[0], "disk");
  EXPECT_EQ(server_->requests_seen(), 1u);
  EXPECT_EQ(CounterOf(*stage_, "cache_hits_total"), 1u);
  EXPECT_EQ(CounterOf(*stage_, "cache_disk_hits_total"), 1u);
  EXPECT_EQ(CounterOf(*stage_, "cache_misses_total"), 0u);
  EXPECT_EQ(CounterOf(*stage_, "cache_hit_bytes_total"), jpeg_.size());
}

TEST_F(FetchCacheTest, ARepeatedUrlInTheInputIsDownloadedOnce) {
  const std::string url = server_->Url("/cat.jpg");
  std::map<ItemId, Record> records =
      Run(Options(cache_dir_.path()), {url, url, server_->Url("/cat.jpg?other"), url});
  EXPECT_EQ(server_->requests_seen(), 2u);
  int downloaded = 0;
  for (ItemId id : {0, 1, 3}) {
    const std::string cache = TextField(records[id], "cache");
    EXPECT_TRUE(cache.empty() || cache == "duplicate" || cache == "disk") << cache;
    if (cache.empty()) downloaded++;
    ExpectTheImage(records[id], cache);
  }
  EXPECT_EQ(downloaded, 1);
  ExpectTheImage(records[2], "");
}

TEST_F(FetchCacheTest, FailuresAreNotStored) {
  const std::vector<std::string> urls = {server_->Url("/gen/html"),
                                         server_->Url("/cat.jpg?status=404")};
  std::map<ItemId, Record> first = Run(Options(cache_dir_.path()), urls);
  EXPECT_EQ(first[0].reason(), FailureReason::kNotImage);
  EXPECT_EQ(first[1].reason(), FailureReason::kHttp4xx);
  runtime_.reset();
  std::map<ItemId, Record> second = Run(Options(cache_dir_.path()), urls);
  EXPECT_EQ(second[0].reason(), FailureReason::kNotImage);
  EXPECT_EQ(second[1].reason(), FailureReason::kHttp4xx);
  EXPECT_EQ(server_->requests_seen(), 4u);
  EXPECT_EQ(CounterOf(*stage_, "cache_stores_total"), 0u);
}

TEST_F(FetchCacheTest, RecordsOfOneUrlShareItsFailure) {
  const std::string url = server_->Url("/cat.jpg?status=404");
  std::map<ItemId, Record> records = Run(Options(cache_dir_.path()), {url, url, url});
  EXPECT_EQ(server_->requests_seen(), 1u);
  for (const auto& [id, record] : records) {
    EXPECT_EQ(record.reason(), FailureReason::kHttp4xx) << id;
  }
}

TEST_F(FetchCacheTest, AnotherMachineIsServedByMemcachedThenByItsOwnDisk) {
  auto memcached = MemcachedServer::Start();
  ASSERT_TRUE(memcached.ok()) << memcached.status().ToString();
  const std::vector<std::string> servers = {(*memcached)->address()};
  const std::string url = server_->Url("/cat.jpg");
  ExpectTheImage(Run(Options(cache_dir_.path(), servers), {url})[0], "");
  runtime_.reset();

  TempDir other_disk;  // the other machine's
  ExpectTheImage(Run(Options(other_disk.path(), servers), {url})[0], "memcached");
  EXPECT_EQ(CounterOf(*stage_, "cache_memcached_hits_total"), 1u);
  runtime_.reset();
  ExpectTheImage(Run(Options(other_disk.path(), servers), {url})[0], "disk");
  EXPECT_EQ(server_->requests_seen(), 1u);
}

TEST_F(FetchCacheTest, AMemcachedServerThatIsGoneCostsOnlyDownloads) {
  auto memcached = MemcachedServer::Start();
  ASSERT_TRUE(memcached.ok()) << memcached.status().ToString();
  const std::vector<std::string> servers = {(*memcached)->address()};
  (*memcached)->Kill();
  std::vector<std::string> urls;
  for (int i = 0; i < 20; ++i)
    urls.push_back(server_->Url("/cat.jpg?n=" + std::to_string(i)));
  std::map<ItemId, Record> records = Run(Options("", servers), urls);
  for (const auto& [id, record] : records) ExpectTheImage(record, "");
  EXPECT_EQ(server_->requests_seen(), urls.size());
  EXPECT_EQ(CounterOf(*stage_, "cache_misses_total"), urls.size());
  EXPECT_GT(CounterOf(*stage_, "cache_memcached_errors_total"), 0u);
}

TEST_F(FetchCacheTest, NoCacheNoCacheCounters) {
  Run(Options(""), {server_->Url("/cat.jpg")});
  for (const auto& [name, value] : stage_->Counters()) {
    EXPECT_FALSE(name.starts_with("cache_")) << name;
  }
  EXPECT_EQ(CounterOf(*stage_, "fetch_attempts_total"), 1u);
  EXPECT_EQ(CounterOf(*stage_, "fetch_responses_total{class=2xx}"), 1u);
  EXPECT_GT(CounterOf(*stage_, "fetch_bytes_total"), 0u);
  EXPECT_EQ(CounterOf(*stage_, "fetch_connect_count_total"), 1u);
}

TEST(FetchCacheOptionsTest, ReadsAndChecksTheCacheOptions) {
  StageRegistry registry;
  ASSERT_TRUE(RegisterFetchStage(registry).ok());
  const StageFactory* factory = registry.Find("fetch");
  ASSERT_NE(factory, nullptr);
  TempDir dir;
  {
    testing::MapStageOptions options({{"cache_dir", dir.File("cache")},
                                      {"cache_max_bytes", "2000000"},
                                      {"memcached", "127.0.0.1:11311"},
                                      {"memcached_max_item_bytes", "4096"},
                                      {"memcached_timeout_ms", "100"},
                                      {"cache_threads", "2"}});
    auto stage = (*factory)(options);
    ASSERT_TRUE(stage.ok()) << stage.status().ToString();
    ASSERT_TRUE(options.Finish().ok());
    const FetchOptions& fetch = static_cast<const FetchStage&>(**stage).options();
    EXPECT_EQ(fetch.cache_dir, dir.File("cache"));
    EXPECT_EQ(fetch.cache_max_bytes, 2'000'000);
    EXPECT_EQ(fetch.memcached, std::vector<std::string>{"127.0.0.1:11311"});
    EXPECT_EQ(fetch.memcached_max_item_bytes, 4096);
    EXPECT_EQ(fetch.memcached_timeout.count(), 100);
    EXPECT_EQ(fetch.cache_threads, 2u);
    EXPECT_TRUE(std::filesystem::is_directory(dir.File("cache/tmp")));
    EXPECT_FALSE((**stage).Counters().empty());
  }
  dir.Write("file", "not a directory");
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"memcached", "no-port"},
           {"cache_dir", dir.File("file") + "/cache"},
           {"cache_max_bytes", "0"},
           {"cache_threads", "0"}}) {
    testing::MapStageOptions options(std::map<std::string, std::string>{{key, value}});
    auto stage = (*factory)(options);
    Status finished = options.Finish();
    const std::string message =
        stage.ok() ? finished.message() : stage.status().message();
    EXPECT_FALSE(stage.ok() && finished.ok()) << key << "=" << value;
    EXPECT_NE(message.find(key), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace sluice
