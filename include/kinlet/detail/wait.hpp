// kinlet/detail/wait.hpp: blocking a reader until a writer publishes, at no
// cost to writers while nobody waits.
//
// The writer's side of the handshake is a compiler barrier and one relaxed
// load (of the waiter count, a line readers write only when they start or stop
// waiting): puts pay nothing for waiters they do not have. The writer's load
// may pass its own publishing store, so a waiter that registers in those few
// nanoseconds can miss its wake-up. Two ways to close the gap:
//  - KINLET_WAIT_MEMBARRIER=1: the waiter runs membarrier(PRIVATE_EXPEDITED)
//    after registering, which makes every running thread of the process
//    execute a full barrier (an asymmetric Dekker, as in liburcu and folly's
//    AsymmetricMemoryBarrier): no wake-up is ever missed;
//  - the default: the waiter sleeps in slices of KINLET_WAIT_SLICE_US (100 us)
//    and re-checks, so a missed wake-up costs at most one slice.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <thread>

#if defined(__linux__)
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

#include "kinlet/config.hpp"

namespace kinlet::detail {

// KINLET_WAIT_MEMBARRIER: 1 makes waiters run membarrier so that no wake-up is
// ever missed; 0 (the default) makes them sleep in short slices instead, so a
// wake-up missed in the nanoseconds-wide race costs at most one slice. On VMs
// whose vCPUs are descheduled, membarrier's IPIs can stall for milliseconds
// (measured in bench/latency_bench.cpp), which is worse than the slices.
#ifndef KINLET_WAIT_MEMBARRIER
#define KINLET_WAIT_MEMBARRIER 0
#endif
#ifndef KINLET_WAIT_SLICE_US
#define KINLET_WAIT_SLICE_US 100
#endif

// Registers for (once) and runs the heavy side of the asymmetric barrier.
// Returns false if the kernel cannot do it (or KINLET_WAIT_MEMBARRIER is 0).
inline bool HeavyBarrier() {
#if KINLET_WAIT_MEMBARRIER && defined(__linux__) && defined(__NR_membarrier)
  static const bool registered =
      syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
  if (registered && syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) {
    return true;
  }
#endif
#if KINLET_ATOMIC_COPY
  // ThreadSanitizer does not model fences; a seq_cst RMW is a full barrier too.
  static std::atomic<int> barrier{0};
  barrier.fetch_add(0, std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
  return false;
}

// The light side: orders the writer's publish before its waiter check for the
// compiler; the heavy side supplies the hardware barrier when it is needed.
inline void LightBarrier() { std::atomic_signal_fence(std::memory_order_seq_cst); }

// Waits while *word == expected, at most `timeout`.
inline void FutexWait(std::atomic<uint32_t>* word, uint32_t expected,
                      std::chrono::nanoseconds timeout) {
#if defined(__linux__) && defined(SYS_futex)
  timespec ts;
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1000000000);
  ts.tv_nsec = static_cast<long>(timeout.count() % 1000000000);
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, &ts, nullptr,
          0);
#else
  (void)word;
  (void)expected;
  std::this_thread::sleep_for(
      std::min<std::chrono::nanoseconds>(timeout, std::chrono::microseconds(50)));
#endif
}

inline void FutexWakeAll(std::atomic<uint32_t>* word) {
#if defined(__linux__) && defined(SYS_futex)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
#else
  (void)word;
#endif
}

// One writer's wake-up channel, shared by any number of waiting readers.
class WaitChannel {
 public:
  // Writer: call after publishing. Costs two relaxed loads while nobody waits,
  // and issues the wake-up system call only when a waiter has gone to sleep
  // since the last one (not once per put).
  void Notify() {
    LightBarrier();
    if (KINLET_UNLIKELY(waiters_.load(std::memory_order_relaxed) != 0)) {
      uint32_t epoch = epoch_.load(std::memory_order_relaxed);
      if (armed_.load(std::memory_order_relaxed) == epoch &&
          epoch_.compare_exchange_strong(epoch, epoch + 1, std::memory_order_release,
                                         std::memory_order_relaxed)) {
        FutexWakeAll(&epoch_);
      }
    }
  }

  // Reader: waits until `ready()` is true or `timeout` passes; returns ready().
  template <typename Ready>
  bool Wait(Ready&& ready, std::chrono::nanoseconds timeout) {
    if (ready()) return true;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    bool ok = false;
    for (;;) {
      // Arm: tell the writer that a waiter is about to sleep on this epoch.
      const uint32_t epoch = epoch_.load(std::memory_order_acquire);
      armed_.store(epoch, std::memory_order_seq_cst);
      const bool exact = HeavyBarrier();
      if (ready()) {
        ok = true;
        break;
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) break;
      auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now);
      // Without membarrier a wake-up can be missed: wait in short slices.
      if (!exact) {
        left = std::min<std::chrono::nanoseconds>(left,
                                                  std::chrono::microseconds(KINLET_WAIT_SLICE_US));
      }
      FutexWait(&epoch_, epoch, left);
    }
    waiters_.fetch_sub(1, std::memory_order_relaxed);
    return ok;
  }

 private:
  // Written by readers when they start/stop waiting and when they arm; read
  // by the writer on every Notify (relaxed; see the file comment for the race
  // this leaves and how it is bounded).
  std::atomic<uint32_t> waiters_{0};
  std::atomic<uint32_t> armed_{UINT32_MAX};
  // Bumped (CAS) by the writer to wake sleepers; the futex word.
  std::atomic<uint32_t> epoch_{0};
};

}  // namespace kinlet::detail
