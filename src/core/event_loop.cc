#include "src/core/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>
#include <utility>

namespace sluice {
namespace {

// Heap entries and watches are tagged in epoll_event.data.u64 as
// (generation << 32 | fd). Generation 0 marks the loop's own wake fd;
// a watch's generation tells a stale event (for an fd unwatched, closed and reused
// within one epoll_wait batch) from a current one.
constexpr std::uint64_t Tag(std::uint32_t generation, int fd) {
  return (static_cast<std::uint64_t>(generation) << 32) | static_cast<std::uint32_t>(fd);
}

// Events read per epoll_wait; more ready fds are simply returned by the next call.
constexpr int kMaxEvents = 256;

// Below this many heap entries, tombstones are not worth a rebuild.
constexpr std::size_t kMinCompactSize = 64;

Status ErrnoStatus(std::string_view what) {
  return IoError(std::string("event loop: ") + std::string(what) + ": " +
                 std::strerror(errno));
}

// Orders a std heap so that the front is the earliest (deadline, id).
struct LaterFirst {
  template <typename Entry>
  bool operator()(const Entry& a, const Entry& b) const {
    if (a.deadline != b.deadline) return a.deadline > b.deadline;
    return a.id > b.id;
  }
};

}  // namespace

Result<std::unique_ptr<EpollEventLoop>> EpollEventLoop::Create() {
  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) return ErrnoStatus("epoll_create1");
  int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) {
    Status status = ErrnoStatus("eventfd");
    close(epoll_fd);
    return status;
  }
  // From here the loop owns (and closes) both descriptors.
  std::unique_ptr<EpollEventLoop> loop(new EpollEventLoop(epoll_fd, wake_fd));
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = Tag(0, wake_fd);
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &event) != 0) {
    return ErrnoStatus("epoll_ctl(ADD)");
  }
  return loop;
}

EpollEventLoop::EpollEventLoop(int epoll_fd, int wake_fd)
    : epoll_fd_(epoll_fd), wake_fd_(wake_fd), now_(Clock::now()) {}

EpollEventLoop::~EpollEventLoop() {
  close(wake_fd_);
  close(epoll_fd_);
}

EventLoop::TimerId EpollEventLoop::AddTimer(Clock::duration delay,
                                            std::function<void()> callback) {
  const TimerId id = next_timer_id_++;
  const Clock::time_point deadline = now_ + std::max(delay, Clock::duration::zero());
  heap_.push_back(HeapEntry{deadline, id});
  std::push_heap(heap_.begin(), heap_.end(), LaterFirst());
  callbacks_.emplace(id, std::move(callback));
  return id;
}

bool EpollEventLoop::CancelTimer(TimerId id) {
  if (callbacks_.erase(id) == 0) return false;
  // The heap entry stays as a tombstone, popped when it reaches the top.
  const std::size_t tombstones = heap_.size() - callbacks_.size();
  if (heap_.size() >= kMinCompactSize && tombstones > callbacks_.size()) CompactHeap();
  return true;
}

void EpollEventLoop::CompactHeap() {
  std::erase_if(
      heap_, [this](const HeapEntry& entry) { return !callbacks_.contains(entry.id); });
  std::make_heap(heap_.begin(), heap_.end(), LaterFirst());
}

void EpollEventLoop::PopCancelledHead() {
  while (!heap_.empty() && !callbacks_.contains(heap_.front().id)) {
    std::pop_heap(heap_.begin(), heap_.end(), LaterFirst());
    heap_.pop_back();
  }
}

int EpollEventLoop::Wait(epoll_event* events, int capacity, Clock::time_point deadline) {
  if (deadline == Clock::time_point::max()) {
    return epoll_wait(epoll_fd_, events, capacity, -1);
  }
  const std::int64_t ns = std::max<std::int64_t>(
      0, std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now())
             .count());
  if (have_pwait2_) {
    timespec timeout{};
    timeout.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    timeout.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    const int ready = epoll_pwait2(epoll_fd_, events, capacity, &timeout, nullptr);
    if (ready >= 0 || errno == EINTR) return ready;
    // ENOSYS before Linux 5.11; a seccomp filter may answer EPERM instead. Either
    // way it will not work later: wait the older way from now on.
    have_pwait2_ = false;
  }
  // Rounded up: waking before the deadline would only wait again.
  const std::int64_t ms = std::min<std::int64_t>((ns + 999'999) / 1'000'000, 1 << 30);
  return epoll_wait(epoll_fd_, events, capacity, static_cast<int>(ms));
}

void EpollEventLoop::RunDueTimers() {
  // Collect first, then run: a callback that adds a zero-delay timer must not
  // have it run in this same pass (that could loop forever).
  std::vector<TimerId> due;
  due.swap(due_);
  due.clear();
  while (!heap_.empty() && heap_.front().deadline <= now_) {
    std::pop_heap(heap_.begin(), heap_.end(), LaterFirst());
    due.push_back(heap_.back().id);
    heap_.pop_back();
  }
  for (TimerId id : due) {
    auto it = callbacks_.find(id);
    if (it == callbacks_.end()) continue;  // cancelled, possibly by an earlier callback
    std::function<void()> callback = std::move(it->second);
    callbacks_.erase(it);
    callback();
  }
  due.clear();
  due_.swap(due);  // keep the capacity for the next pass
}

Status EpollEventLoop::WatchFd(int fd, std::uint32_t events,
                               std::function<void(std::uint32_t)> callback) {
  auto it = watches_.find(fd);
  const bool known = it != watches_.end();
  const std::uint32_t generation = known ? it->second.generation : next_generation_++;
  if (next_generation_ == 0) next_generation_ = 1;  // 0 is the loop's own tag
  epoll_event event{};
  event.events = events;
  event.data.u64 = Tag(generation, fd);
  if (epoll_ctl(epoll_fd_, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &event) != 0) {
    return ErrnoStatus("watch fd " + std::to_string(fd));
  }
  auto shared = std::make_shared<std::function<void(std::uint32_t)>>(std::move(callback));
  if (known) {
    it->second.callback = std::move(shared);
  } else {
    watches_.emplace(fd, Watch{generation, std::move(shared)});
  }
  return Status::Ok();
}

void EpollEventLoop::UnwatchFd(int fd) {
  if (watches_.erase(fd) == 0) return;
  // Fails harmlessly (EBADF) when the owner closed the fd first, which already
  // removed it from the epoll set.
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

void EpollEventLoop::RunOnce() {
  PopCancelledHead();
  const Clock::time_point deadline =
      heap_.empty() ? Clock::time_point::max() : heap_.front().deadline;
  std::array<epoll_event, kMaxEvents> events;
  int ready = Wait(events.data(), kMaxEvents, deadline);
  if (ready < 0) ready = 0;  // EINTR: treat as a spurious wake-up
  now_ = Clock::now();
  bool woken = false;
  for (int i = 0; i < ready; ++i) {
    const std::uint64_t tag = events[i].data.u64;
    const int fd = static_cast<int>(tag & 0xffffffffu);
    const auto generation = static_cast<std::uint32_t>(tag >> 32);
    if (generation == 0) {
      // Drain the eventfd before clearing the flag: a Wake() after the clear
      // writes again, so no wake-up is lost.
      std::uint64_t count;
      [[maybe_unused]] ssize_t n = read(wake_fd_, &count, sizeof(count));
      wake_pending_.store(false);
      woken = true;
      continue;
    }
    auto it = watches_.find(fd);
    if (it == watches_.end() || it->second.generation != generation) continue;
    auto callback = it->second.callback;  // survives UnwatchFd() inside the call
    (*callback)(events[i].events);
  }
  RunDueTimers();
  if (woken) RunPosted();
}

void EpollEventLoop::Run() {
  while (!stop_.load(std::memory_order_acquire)) RunOnce();
}

void EpollEventLoop::Stop() {
  stop_.store(true, std::memory_order_release);
  Wake();
}

void EpollEventLoop::Wake() {
  if (wake_pending_.exchange(true)) return;
  const std::uint64_t one = 1;
  // Cannot block (EFD_NONBLOCK) and cannot overflow: the loop reads it each time.
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void EpollEventLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  Wake();
}

void EpollEventLoop::RunPosted() {
  std::vector<std::function<void()>> posted;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    posted.swap(posted_);
  }
  for (auto& fn : posted) fn();
}

}  // namespace sluice
