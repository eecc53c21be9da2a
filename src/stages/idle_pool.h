// A pool of objects that are expensive to make and must not be used by two threads
// at once (OpenCV's cascade classifiers, DNN networks): a thread borrows one, uses
// it alone, and gives it back; the pool makes a new one when none is idle. It grows
// to the number of threads that ever use one at the same time and never shrinks.
//
// Thread-safety: Borrow() may be called concurrently; a Lease is used by one thread.
#ifndef SLUICE_STAGES_IDLE_POOL_H_
#define SLUICE_STAGES_IDLE_POOL_H_

#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

namespace sluice {

template <typename T>
class IdlePool {
 public:
  // `make` builds a new object, nullptr when it cannot (then Borrow() throws).
  explicit IdlePool(std::function<std::unique_ptr<T>()> make) : make_(std::move(make)) {}

  // Hands the object back to its pool when destroyed.
  class Lease {
   public:
    Lease(IdlePool* pool, std::unique_ptr<T> object)
        : pool_(pool), object_(std::move(object)) {}
    Lease(Lease&&) = delete;
    ~Lease() {
      if (object_ != nullptr) pool_->GiveBack(std::move(object_));
    }
    // Drops the object instead of giving it back (it may be broken: its use threw).
    void Discard() { object_.reset(); }
    T& operator*() const { return *object_; }
    T* operator->() const { return object_.get(); }

   private:
    IdlePool* const pool_;
    std::unique_ptr<T> object_;
  };

  // An idle object, or a new one. Throws std::runtime_error when a new one is needed
  // and `make` fails (it succeeded before, so only memory can be short).
  Lease Borrow() {
    std::unique_ptr<T> object;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!idle_.empty()) {
        object = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (object == nullptr) object = make_();
    if (object == nullptr) throw std::runtime_error("cannot make another pooled object");
    return Lease(this, std::move(object));
  }

  // Adds an object made elsewhere (e.g. the one a loader checked) as idle.
  void Add(std::unique_ptr<T> object) { GiveBack(std::move(object)); }

 private:
  void GiveBack(std::unique_ptr<T> object) {
    std::lock_guard<std::mutex> lock(mutex_);
    idle_.push_back(std::move(object));
  }

  const std::function<std::unique_ptr<T>()> make_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<T>> idle_;  // guarded by mutex_
};

}  // namespace sluice

#endif  // SLUICE_STAGES_IDLE_POOL_H_
