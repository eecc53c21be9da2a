#include "src/core/event_loop.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

namespace sluice {
namespace {

using std::chrono::milliseconds;

std::unique_ptr<EpollEventLoop> NewLoop() {
  auto loop = EpollEventLoop::Create();
  EXPECT_TRUE(loop.ok()) << loop.status().ToString();
  return std::move(loop).value();
}

// Runs a loop on a thread of its own for tests that drive it from outside.
class LoopThread {
 public:
  explicit LoopThread(EpollEventLoop& loop)
      : loop_(loop), thread_([this] { loop_.Run(); }) {}
  ~LoopThread() {
    loop_.Stop();
    thread_.join();
  }

 private:
  EpollEventLoop& loop_;
  std::thread thread_;
};

TEST(EventLoopTest, TimersFireInDeadlineOrderThenAddOrder) {
  auto loop = NewLoop();
  std::vector<int> fired;
  loop->AddTimer(milliseconds(30), [&] { fired.push_back(30); });
  loop->AddTimer(milliseconds(10), [&] { fired.push_back(10); });
  loop->AddTimer(milliseconds(20), [&] { fired.push_back(20); });
  // Same deadline: the order they were added in.
  loop->AddTimer(milliseconds(20), [&] { fired.push_back(21); });
  loop->AddTimer(milliseconds(40), [&] { loop->Stop(); });
  loop->Run();
  EXPECT_EQ(fired, (std::vector<int>{10, 20, 21, 30}));
  EXPECT_EQ(loop->pending_timers(), 0u);
}

TEST(EventLoopTest, TimerWaitsAtLeastItsDelay) {
  auto loop = NewLoop();
  // "From now" is the loop's Now(), which was read when the loop was made: bring it
  // up to date, as each iteration does, before the timer is added.
  loop->RefreshNow();
  const auto start = loop->Now();
  std::chrono::steady_clock::time_point fired_at;
  loop->AddTimer(milliseconds(25), [&] {
    fired_at = std::chrono::steady_clock::now();
    loop->Stop();
  });
  loop->Run();
  EXPECT_GE(fired_at - start, milliseconds(25));
  EXPECT_GE(loop->Now(), start + milliseconds(25));
}

TEST(EventLoopTest, MillisecondWaitsKeepTimersOrderedAndOnTime) {
  // The way of waiting on kernels without epoll_pwait2: timeouts rounded up to a
  // millisecond, never early.
  auto loop = NewLoop();
  loop->UseMillisecondWaits();
  loop->RefreshNow();
  const auto start = loop->Now();
  std::vector<int> fired;
  std::chrono::steady_clock::time_point last_at;
  for (int delay_us : {2500, 500, 1500}) {
    loop->AddTimer(std::chrono::microseconds(delay_us), [&, delay_us] {
      fired.push_back(delay_us);
      last_at = std::chrono::steady_clock::now();
      EXPECT_GE(last_at - start, std::chrono::microseconds(delay_us));
    });
  }
  loop->AddTimer(milliseconds(5), [&] { loop->Stop(); });
  loop->Run();
  EXPECT_EQ(fired, (std::vector<int>{500, 1500, 2500}));
}

TEST(EventLoopTest, CancelledTimerNeverFires) {
  auto loop = NewLoop();
  bool cancelled_fired = false;
  auto id = loop->AddTimer(milliseconds(5), [&] { cancelled_fired = true; });
  EXPECT_TRUE(loop->CancelTimer(id));
  EXPECT_FALSE(loop->CancelTimer(id));     // already cancelled
  EXPECT_FALSE(loop->CancelTimer(12345));  // unknown
  auto fired_id = loop->AddTimer(milliseconds(1), [] {});
  loop->AddTimer(milliseconds(10), [&] { loop->Stop(); });
  loop->Run();
  EXPECT_FALSE(cancelled_fired);
  EXPECT_FALSE(loop->CancelTimer(fired_id));  // already fired
}

TEST(EventLoopTest, CallbackMayCancelALaterDueTimer) {
  auto loop = NewLoop();
  EventLoop::TimerId second = 0;
  bool second_fired = false;
  loop->AddTimer(milliseconds(2), [&] { EXPECT_TRUE(loop->CancelTimer(second)); });
  second = loop->AddTimer(milliseconds(2), [&] { second_fired = true; });
  loop->AddTimer(milliseconds(5), [&] { loop->Stop(); });
  loop->Run();
  EXPECT_FALSE(second_fired);
}

TEST(EventLoopTest, ZeroDelayTimerAddedByATimerRunsInALaterPass) {
  auto loop = NewLoop();
  int passes = 0;
  std::function<void()> again = [&] {
    if (++passes < 100) {
      loop->AddTimer(milliseconds(0), again);
    } else {
      loop->Stop();
    }
  };
  loop->AddTimer(milliseconds(0), again);
  loop->Run();
  EXPECT_EQ(passes, 100);
}

TEST(EventLoopTest, TenThousandTimersWithHalfCancelled) {
  auto loop = NewLoop();
  constexpr int kTimers = 10000;
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> delay_us(0, 20000);
  std::vector<EventLoop::TimerId> ids;
  std::vector<std::chrono::steady_clock::time_point> deadlines;
  std::vector<int> fired;
  for (int i = 0; i < kTimers; ++i) {
    const auto delay = std::chrono::microseconds(delay_us(rng));
    deadlines.push_back(loop->Now() + delay);
    ids.push_back(loop->AddTimer(delay, [&fired, i] { fired.push_back(i); }));
  }
  EXPECT_EQ(loop->pending_timers(), static_cast<std::size_t>(kTimers));
  for (int i = 0; i < kTimers; i += 2) ASSERT_TRUE(loop->CancelTimer(ids[i]));
  EXPECT_EQ(loop->pending_timers(), static_cast<std::size_t>(kTimers / 2));
  while (loop->pending_timers() != 0) loop->RunOnce();

  ASSERT_EQ(fired.size(), static_cast<std::size_t>(kTimers / 2));
  for (std::size_t k = 0; k < fired.size(); ++k) {
    EXPECT_EQ(fired[k] % 2, 1) << "a cancelled timer fired";
    if (k > 0) {
      EXPECT_LE(deadlines[fired[k - 1]], deadlines[fired[k]]) << "out of deadline order";
    }
  }
}

TEST(EventLoopTest, WatchFdReportsReadinessAndUnwatchFromInsideCallback) {
  auto loop = NewLoop();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  int calls = 0;
  std::uint32_t seen_events = 0;
  Status status = loop->WatchFd(fds[0], EPOLLIN, [&](std::uint32_t events) {
    ++calls;
    seen_events = events;
    char byte;
    ASSERT_EQ(read(fds[0], &byte, 1), 1);
    loop->UnwatchFd(fds[0]);  // destroys this callback's watch while it runs
    loop->Stop();
  });
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  loop->Run();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(seen_events & EPOLLIN);

  // Unwatched: a new write must not call the old callback.
  ASSERT_EQ(write(fds[1], "y", 1), 1);
  bool timer_ran = false;
  loop->AddTimer(milliseconds(5), [&] { timer_ran = true; });
  while (!timer_ran) loop->RunOnce();
  EXPECT_EQ(calls, 1);
  close(fds[0]);
  close(fds[1]);
}

TEST(EventLoopTest, WatchFdAgainReplacesTheCallback) {
  auto loop = NewLoop();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  int first = 0;
  int second = 0;
  ASSERT_TRUE(loop->WatchFd(fds[0], EPOLLIN, [&](std::uint32_t) { ++first; }).ok());
  ASSERT_TRUE(loop->WatchFd(fds[0], EPOLLIN,
                            [&](std::uint32_t) {
                              ++second;
                              loop->UnwatchFd(fds[0]);
                            })
                  .ok());
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  while (second == 0) loop->RunOnce();
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 1);
  close(fds[0]);
  close(fds[1]);
}

TEST(EventLoopTest, WatchingABadFdIsAnError) {
  auto loop = NewLoop();
  Status status = loop->WatchFd(-1, EPOLLIN, [](std::uint32_t) {});
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kIoError);
}

TEST(EventLoopTest, PostFromOtherThreadsRunsOnTheLoopInOrder) {
  auto loop = NewLoop();
  std::atomic<int> ran{0};
  std::vector<int> order;  // touched only on the loop thread
  std::thread::id loop_thread;
  std::atomic<bool> wrong_thread{false};
  loop->Post([&] { loop_thread = std::this_thread::get_id(); });
  {
    LoopThread runner(*loop);
    std::thread poster([&] {
      for (int i = 0; i < 1000; ++i) {
        loop->Post([&, i] {
          if (std::this_thread::get_id() != loop_thread) wrong_thread = true;
          order.push_back(i);
          ran.fetch_add(1);
        });
      }
    });
    poster.join();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (ran.load() < 1000 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  }  // stops and joins the loop: `order` is safe to read below
  ASSERT_EQ(ran.load(), 1000);
  EXPECT_FALSE(wrong_thread.load());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(order[i], i);
}

TEST(EventLoopTest, StopFromAnotherThreadEndsRun) {
  auto loop = NewLoop();
  std::atomic<bool> returned{false};
  std::thread runner([&] {
    loop->Run();
    returned = true;
  });
  loop->Stop();
  runner.join();
  EXPECT_TRUE(returned.load());
}

}  // namespace
}  // namespace sluice
