// kinlet/detail/wait.hpp: blocking a reader until a writer publishes, at no
// cost to writers while nobody waits.
//
// The writer's side of the handshake is a compiler barrier and one relaxed
// load (of the waiter count, a line readers write only when they start or stop
// waiting). The reader's side pays for the ordering instead: after announcing
// itself it runs membarrier(PRIVATE_EXPEDITED), which makes every running
// thread of the process execute a full barrier (an asymmetric Dekker, as in
// liburcu and folly's AsymmetricMemoryBarrier): either the reader then sees the
// writer's new data, or the writer sees the waiter and wakes it by futex.
// Where membarrier or futex is missing, waits fall back to short sleeps.
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

// Registers for (once) and runs the heavy side of the asymmetric barrier.
// Returns false if the kernel cannot do it.
inline bool HeavyBarrier() {
#if defined(__linux__) && defined(__NR_membarrier)
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
  // Writer: call after publishing. Costs a relaxed load while nobody waits.
  void Notify() {
    LightBarrier();
    if (KINLET_UNLIKELY(waiters_.load(std::memory_order_relaxed) != 0)) {
      epoch_.fetch_add(1, std::memory_order_release);
      FutexWakeAll(&epoch_);
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
      const uint32_t epoch = epoch_.load(std::memory_order_acquire);
      const bool exact = HeavyBarrier();
      if (ready()) {
        ok = true;
        break;
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) break;
      auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now);
      // Without membarrier a wake-up can be missed: wait in short slices.
      if (!exact) left = std::min<std::chrono::nanoseconds>(left, std::chrono::microseconds(50));
      FutexWait(&epoch_, epoch, left);
    }
    waiters_.fetch_sub(1, std::memory_order_relaxed);
    return ok;
  }

 private:
  std::atomic<uint32_t> waiters_{0};  // written by readers when they start/stop waiting
  std::atomic<uint32_t> epoch_{0};    // bumped by the writer to wake waiters
};

}  // namespace kinlet::detail
