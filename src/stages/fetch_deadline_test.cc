// The fetch stage at the runtime's record deadline (AsyncStage::Abandon): whatever
// its transfer is doing (in an attempt against a server that never answers, queued
// behind its host's cap, waiting to retry), the record comes back at once, failed
// as a timeout, and nothing of the transfer completes it a second time later.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "src/core/event_loop.h"
#include "src/stages/fetch_stage.h"
#include "tests/fixtures/fault_server.h"
#include "tests/support/temp_dir.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using testing::FaultServer;
using testing::FaultServerOptions;

// The runtime's side of the stage, without the runtime: the test drives the loop.
class RecordingContext final : public AsyncContext {
 public:
  explicit RecordingContext(EventLoop& loop) : loop_(loop) {}
  EventLoop& loop() override { return loop_; }
  void Complete(Record record) override { completed.push_back(std::move(record)); }
  void FailStage(Status error) override { stage_error = std::move(error); }

  std::vector<Record> completed;
  Status stage_error;

 private:
  EventLoop& loop_;
};

class FetchDeadlineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FaultServerOptions options;
    auto server = FaultServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    auto loop = EpollEventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status().ToString();
    loop_ = std::move(loop).value();
    ctx_ = std::make_unique<RecordingContext>(*loop_);
  }

  // Runs the loop until `done` holds; false if it does not within a generous
  // deadline (which only guards against a hang).
  template <typename Done>
  bool RunUntil(Done done) {
    const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!done()) {
      if (std::chrono::steady_clock::now() > limit) return false;
      loop_->RunOnce();
    }
    return true;
  }

  static FetchOptions Options() {
    FetchOptions options;
    options.allow_private_networks = true;
    options.connect_timeout = milliseconds(1000);
    options.timeout = milliseconds(3000);  // one attempt: curl ends it after 3 s
    options.item_timeout = milliseconds(60000);
    options.retries = 0;
    options.io_threads = 1;
    options.max_host_connections = 1;
    return options;
  }

  std::unique_ptr<FaultServer> server_;
  std::unique_ptr<EpollEventLoop> loop_;
  std::unique_ptr<RecordingContext> ctx_;
};

TEST_F(FetchDeadlineTest, ARecordIsGivenBackAtOnceWhateverItsTransferDoes) {
  FetchStage stage(Options());
  EXPECT_EQ(stage.record_deadline(), milliseconds(60000) + FetchStage::kDeadlineMargin);
  // Item 1 is in an attempt against a server that answers after a minute; item 2
  // waits behind it for the host's only slot.
  stage.Start(Record(1, server_->Url("/gen/bytes?size=10&delay=60000")), *ctx_);
  stage.Start(Record(2, server_->Url("/gen/bytes?size=10")), *ctx_);
  ASSERT_TRUE(RunUntil([&] {
    return stage.InFlightSummary().find("1 in an attempt, 1 waiting for a host slot") !=
           std::string::npos;
  })) << stage.InFlightSummary();

  stage.Abandon(2, *ctx_);
  ASSERT_EQ(ctx_->completed.size(), 1u) << "given back from inside Abandon()";
  EXPECT_EQ(ctx_->completed[0].id(), 2u);
  EXPECT_EQ(ctx_->completed[0].reason(), FailureReason::kTimeout);
  EXPECT_NE(ctx_->completed[0].error().find("waiting for a connection"),
            std::string::npos)
      << ctx_->completed[0].error();

  stage.Abandon(1, *ctx_);
  ASSERT_EQ(ctx_->completed.size(), 2u);
  EXPECT_EQ(ctx_->completed[1].id(), 1u);
  EXPECT_EQ(ctx_->completed[1].reason(), FailureReason::kTimeout);
  EXPECT_NE(ctx_->completed[1].error().find("in attempt 1"), std::string::npos)
      << ctx_->completed[1].error();
  EXPECT_EQ(ctx_->completed[1].url(), server_->Url("/gen/bytes?size=10&delay=60000"))
      << "the stage's own record, with its url";
  EXPECT_NE(stage.InFlightSummary().find("1 past their deadline still in curl"),
            std::string::npos)
      << stage.InFlightSummary();

  // curl ends the abandoned attempt by its own timeout; the transfer is then freed
  // and nothing is completed a second time.
  ASSERT_TRUE(RunUntil([&] {
    return stage.InFlightSummary().find("0 past their deadline") != std::string::npos;
  })) << stage.InFlightSummary();
  EXPECT_EQ(ctx_->completed.size(), 2u);
  stage.Abandon(1, *ctx_);  // unknown by now: nothing happens
  EXPECT_EQ(ctx_->completed.size(), 2u);
  EXPECT_TRUE(ctx_->stage_error.ok());
}

TEST_F(FetchDeadlineTest, ARecordWaitingToRetryIsGivenBackAndItsTimerCancelled) {
  FetchOptions options = Options();
  options.retries = 3;
  options.retry_base = milliseconds(20000);  // a long wait before the retry
  options.retry_max = milliseconds(40000);
  FetchStage stage(options);
  stage.Start(Record(7, server_->Url("/gen/bytes?size=10&status=503")), *ctx_);
  ASSERT_TRUE(RunUntil([&] {
    return stage.InFlightSummary().find("1 waiting to retry") != std::string::npos;
  })) << stage.InFlightSummary();
  stage.Abandon(7, *ctx_);
  ASSERT_EQ(ctx_->completed.size(), 1u);
  EXPECT_EQ(ctx_->completed[0].reason(), FailureReason::kTimeout);
  EXPECT_NE(ctx_->completed[0].error().find("waiting to retry after attempt 1"),
            std::string::npos)
      << ctx_->completed[0].error();
  EXPECT_NE(stage.InFlightSummary().find("0 in an attempt, 0 waiting for a host slot, "
                                         "0 waiting to retry"),
            std::string::npos)
      << stage.InFlightSummary();
}

}  // namespace
}  // namespace sluice
