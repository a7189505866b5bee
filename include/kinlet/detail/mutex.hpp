// kinlet/detail/mutex.hpp: locks visible to both ThreadSanitizer and Clang's
// thread-safety analysis.
//
// Debian's Abseil is not built with TSan, so absl::Mutex is invisible to it and
// TSan would report false races on data it guards. Mutex wraps std::mutex;
// SpinLock is the shard writer lock (a handful of instructions uncontended,
// yields under contention so a preempted holder is not spun on for a slice).
#pragma once

#include <atomic>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "kinlet/config.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KINLET_DETAIL_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define KINLET_DETAIL_PAUSE() asm volatile("yield")
#else
#define KINLET_DETAIL_PAUSE() ((void)0)
#endif

namespace kinlet::detail {

class ABSL_LOCKABLE Mutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return mu_.try_lock(); }

 private:
  std::mutex mu_;
};

// Test-and-test-and-set spin lock. Acquire on Lock pairs with release on Unlock.
class ABSL_LOCKABLE SpinLock {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    if (KINLET_LIKELY(!locked_.exchange(true, std::memory_order_acquire))) return;
    LockSlow();
  }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() { locked_.store(false, std::memory_order_release); }

 private:
  void LockSlow() {
    for (int spins = 0;; ++spins) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins < 128) {
          KINLET_DETAIL_PAUSE();
        } else {
          std::this_thread::yield();
        }
      }
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
    }
  }
  std::atomic<bool> locked_{false};
};

// A lock that does nothing, for shards written by one thread only
// (SingleWriterTraits): the writer then takes no atomic read-modify-write.
class ABSL_LOCKABLE NullLock {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {}
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return true; }
  void Unlock() ABSL_UNLOCK_FUNCTION() {}
};

// RAII holder for any of the locks.
template <typename Lock>
class ABSL_SCOPED_LOCKABLE LockGuard {
 public:
  explicit LockGuard(Lock* lock) ABSL_EXCLUSIVE_LOCK_FUNCTION(lock) : lock_(lock) { lock_->Lock(); }
  ~LockGuard() ABSL_UNLOCK_FUNCTION() { lock_->Unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Lock* lock_;
};

using MutexLock = LockGuard<Mutex>;
using SpinLockGuard = LockGuard<SpinLock>;

}  // namespace kinlet::detail
