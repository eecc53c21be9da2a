// EpollEventLoop: the Linux implementation of sluice::EventLoop.
//
// One epoll instance watches the fds that stages register with WatchFd() and one
// eventfd, written by Wake() and Post() from other threads. Timers live in a binary
// min-heap ordered by (deadline, id), so 10,000s of them cost O(log n) each;
// CancelTimer() drops the callback at once and leaves a tombstone in the heap, which
// is rebuilt without tombstones when they outnumber live timers, so memory stays
// proportional to the live timers. The earliest deadline is the timeout of the
// wait itself (epoll_pwait2, nanoseconds; epoll_wait rounded up to a millisecond
// where the kernel lacks it): adding, cancelling or firing a timer costs no system
// call, and a timer already due makes the next wait return at once.
//
// Each iteration (RunOnce) waits, refreshes Now(), runs the fd callbacks that are
// ready, the timers that are due and the posted functions.
//
// Thread-safety: Post(), Wake() and Stop() may be called from any thread. Every
// other method must be called on the thread running the loop (or while no thread
// runs it). Callbacks run on the loop thread.
#ifndef SLUICE_CORE_EVENT_LOOP_H_
#define SLUICE_CORE_EVENT_LOOP_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "sluice/stage.h"
#include "sluice/status.h"

struct epoll_event;

namespace sluice {

class EpollEventLoop final : public EventLoop {
 public:
  // Opens the epoll and wake descriptors.
  static Result<std::unique_ptr<EpollEventLoop>> Create();
  ~EpollEventLoop() override;

  EpollEventLoop(const EpollEventLoop&) = delete;
  EpollEventLoop& operator=(const EpollEventLoop&) = delete;

  // --- EventLoop (loop thread only) ---
  Clock::time_point Now() const override { return now_; }
  TimerId AddTimer(Clock::duration delay, std::function<void()> callback) override;
  bool CancelTimer(TimerId id) override;
  Status WatchFd(int fd, std::uint32_t events,
                 std::function<void(std::uint32_t)> callback) override;
  void UnwatchFd(int fd) override;

  // Waits with epoll_wait and millisecond timeouts from now on, as on kernels
  // without epoll_pwait2 (the loop switches by itself when that call fails; tests
  // use this to run that way too). Loop thread only.
  void UseMillisecondWaits() { have_pwait2_ = false; }

  // Refreshes Now() from the clock, for code that starts timers after doing
  // something slow in the same iteration. Loop thread only.
  void RefreshNow() { now_ = Clock::now(); }

  // Pending timers (not fired, not cancelled). Loop thread only.
  std::size_t pending_timers() const { return callbacks_.size(); }

  // Runs one iteration: waits until an fd is ready, a timer is due or the loop is
  // woken, then runs what is ready. Loop thread only.
  void RunOnce();

  // Runs iterations until Stop() is called. Loop thread only.
  void Run();

  // --- any thread ---

  // Makes Run() return after its current iteration. Thread-safe.
  void Stop();
  // Makes the current or next RunOnce() return without waiting. Thread-safe, cheap
  // when a wake-up is already pending (no system call).
  void Wake();
  // EventLoop::Post: thread-safe.
  void Post(std::function<void()> fn) override;

 private:
  struct HeapEntry {
    Clock::time_point deadline;
    TimerId id;
  };
  struct Watch {
    std::uint32_t generation;
    // shared so that the callback survives an UnwatchFd() from inside itself.
    std::shared_ptr<std::function<void(std::uint32_t)>> callback;
  };

  EpollEventLoop(int epoll_fd, int wake_fd);

  // Waits for events until `deadline` (time_point::max(): no limit); returns how
  // many were stored in `events`.
  int Wait(epoll_event* events, int capacity, Clock::time_point deadline);
  void RunDueTimers();
  void RunPosted();
  // Pops tombstones (cancelled timers) off the top of the heap.
  void PopCancelledHead();
  // Rebuilds the heap without tombstones.
  void CompactHeap();

  const int epoll_fd_;
  const int wake_fd_;

  Clock::time_point now_;
  std::atomic<bool> stop_{false};

  // Timers: heap of (deadline, id) with tombstones; the live ones are exactly the
  // keys of callbacks_.
  std::vector<HeapEntry> heap_;
  std::unordered_map<TimerId, std::function<void()>> callbacks_;
  TimerId next_timer_id_ = 1;
  // False once epoll_pwait2 has failed (kernels before 5.11, seccomp filters).
  bool have_pwait2_ = true;
  std::vector<TimerId> due_;  // scratch for RunDueTimers

  std::unordered_map<int, Watch> watches_;
  std::uint32_t next_generation_ = 1;

  // True from a Wake()/Post() until the loop reads the eventfd; saves redundant
  // writes.
  std::atomic<bool> wake_pending_{false};
  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;  // guarded by posted_mu_
};

}  // namespace sluice

#endif  // SLUICE_CORE_EVENT_LOOP_H_
