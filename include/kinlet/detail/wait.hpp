// kinlet/detail/wait.hpp: blocking a reader until a writer publishes, at no
// cost to writers while nobody waits, and at no cost to a waiter while nothing
// is published (no polling tick).
//
// Two kinds of listener share a WaitChannel: sleepers (threads blocked in
// Wait) and watchers (push subscriptions, which ask to be told of the next
// Notify instead of blocking a thread: Watch / Arm / Unwatch).
//
// The writer's side (Notify, after every publish): a compiler barrier and one
// relaxed load of `waiters_`, the number of registered sleepers plus armed
// watchers. Only when it is non-zero does the writer take the slow path:
// `armed_.exchange(0, acq_rel)`, and if a sleeper had armed, a bump of the
// futex word `epoch_` and FUTEX_WAKE; if a watcher had armed, the watchers'
// lock and a call to each armed watcher (once: arming is one-shot).
//
// Why no wake-up is lost. Call a put's publishing store S and its load of
// `waiters_` L. A listener registers (R: a seq_cst RMW on `waiters_`), then,
// before every sleep, loads `epoch_`, arms (A: an acq_rel RMW on `armed_`) and
// re-checks its condition (reading what S wrote, or not).
//  (1) Puts whose L sees the registration take the slow path, whose exchange X
//      on `armed_` is an RMW, as every access to `armed_` is. If X comes
//      before A in `armed_`'s modification order, A reads from X's release
//      sequence, so S happens before the re-check, which sees the record: the
//      listener does not sleep. If A comes before X, X reads A's release
//      sequence: the listener's load of `epoch_` happens before X, hence
//      before the writer's bump, so the futex sleep on the old value either
//      fails at once or is woken by the FUTEX_WAKE that follows the bump. (For
//      watchers: X sees the watcher bit, and the watcher, put on the armed list
//      under the lock before A, is called under the same lock.) Any number of
//      listeners, any number of notifiers.
//  (2) Puts whose L does not see the registration were in flight when the
//      listener registered: L ran before R became visible, so S (sequenced
//      before L) was at worst in the writer's store buffer then; nothing later
//      than R can be such a put. The listener's FIRST sleep after registering
//      is therefore a short bounded slice (KINLET_WAIT_SLICE_US, 100 us, many
//      times a store buffer's drain time); its re-check after that slice sees
//      every such S. Every later sleep is untimed up to the caller's deadline:
//      every put it could miss is covered by (1). A watcher gets the same
//      single re-check after arming (DeliveryTask::Next::recheck).
//      With KINLET_WAIT_MEMBARRIER=1 (or SetWaitMembarrier(true)) the listener
//      instead runs membarrier(PRIVATE_EXPEDITED) once after registering: every
//      running thread of the process executes a full barrier, so each in-flight
//      S is visible afterwards (an asymmetric Dekker, as liburcu's and folly's
//      AsymmetricMemoryBarrier), and even the first sleep is untimed.
// So an idle sleeper costs one extra wake-up per Wait call (or none), not one
// per slice, and puts pay nothing for listeners they do not have.
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

#include "absl/time/time.h"
#include "kinlet/config.hpp"
#include "kinlet/detail/mutex.hpp"

namespace kinlet::detail {

// KINLET_WAIT_MEMBARRIER: 1 makes a listener run membarrier once after
// registering, so that even its first sleep is untimed; 0 (the default) makes
// that first sleep a bounded slice instead. On VMs whose vCPUs are
// descheduled, membarrier's IPIs can stall for milliseconds (measured in
// bench/latency_bench.cpp), which is worse than one slice.
#ifndef KINLET_WAIT_MEMBARRIER
#define KINLET_WAIT_MEMBARRIER 0
#endif
#ifndef KINLET_WAIT_SLICE_US
#define KINLET_WAIT_SLICE_US 100
#endif

// --- Deadlines ----------------------------------------------------------------

using SteadyTime = std::chrono::steady_clock::time_point;

// now + timeout, saturating: an infinite or too large timeout gives
// SteadyTime::max() (never), a negative one `now`. Never overflows.
inline SteadyTime DeadlineAfter(SteadyTime now, std::chrono::nanoseconds timeout) {
  using std::chrono::steady_clock;
  if (timeout <= std::chrono::nanoseconds::zero()) return now;
  const auto room = SteadyTime::max() - now;  // >= 0: now is never past max()
  const auto t = std::chrono::duration_cast<steady_clock::duration>(timeout);
  if (t >= room) return SteadyTime::max();
  return now + t;
}
inline SteadyTime DeadlineAfter(SteadyTime now, absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) return SteadyTime::max();
  // ToChronoNanoseconds saturates finite durations beyond its range.
  return DeadlineAfter(now, absl::ToChronoNanoseconds(timeout));
}
inline SteadyTime DeadlineAfter(absl::Duration timeout) {
  return DeadlineAfter(std::chrono::steady_clock::now(), timeout);
}
inline SteadyTime DeadlineAfter(std::chrono::nanoseconds timeout) {
  return DeadlineAfter(std::chrono::steady_clock::now(), timeout);
}

// --- The asymmetric barrier -----------------------------------------------------

// Whether listeners run membarrier after registering (KINLET_WAIT_MEMBARRIER;
// tests switch it at run time). Read once per Wait / Arm; writers never read it.
inline std::atomic<bool>& WaitMembarrierFlag() {
  static std::atomic<bool> on{KINLET_WAIT_MEMBARRIER != 0};
  return on;
}
inline void SetWaitMembarrier(bool on) {
  WaitMembarrierFlag().store(on, std::memory_order_relaxed);
}

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
  return false;
}

// After a listener registers: true if every put in flight is now visible to
// it (membarrier ran), false if its first sleep must be a bounded slice.
inline bool SettleInFlightPuts() {
  return WaitMembarrierFlag().load(std::memory_order_relaxed) && HeavyBarrier();
}

// The light side: orders the writer's publish before its waiter check for the
// compiler; the listener's slice (or the heavy side) covers the hardware.
inline void LightBarrier() { std::atomic_signal_fence(std::memory_order_seq_cst); }

// --- Futex ---------------------------------------------------------------------

// Waits while *word == expected, until `deadline` (SteadyTime::max(): no limit).
inline void FutexWaitUntil(std::atomic<uint32_t>* word, uint32_t expected, SteadyTime deadline) {
#if defined(__linux__) && defined(SYS_futex)
  timespec ts;
  timespec* limit = nullptr;
  if (deadline != SteadyTime::max()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return;
    const int64_t left =
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now).count();
    ts.tv_sec = static_cast<time_t>(left / 1000000000);
    ts.tv_nsec = static_cast<long>(left % 1000000000);
    limit = &ts;
  }
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, limit,
          nullptr, 0);
#else
  (void)word;
  (void)expected;
  (void)deadline;
  std::this_thread::sleep_for(std::chrono::microseconds(50));  // no futex: poll
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

// --- The channel -----------------------------------------------------------------

// One writer's wake-up channel, shared by any number of sleepers and watchers.
// Thread safety: every member is thread-safe.
class WaitChannel {
 public:
  // A push listener: told (OnNotify) of the first Notify after each Arm.
  class Watcher {
   public:
    // Called by a notifier (a writer, inside its put), under the channel's
    // watcher lock: must be short and must not block, take the shard's writer
    // lock or call back into the channel (schedule work elsewhere instead).
    virtual void OnNotify() = 0;

   protected:
    ~Watcher() = default;

   private:
    friend class WaitChannel;
    // Guarded by the channel's watch_mu_ (its Watch..Unwatch lifetime).
    Watcher* prev_ = nullptr;
    Watcher* next_ = nullptr;
    bool armed_ = false;
  };

  WaitChannel() = default;
  WaitChannel(const WaitChannel&) = delete;
  WaitChannel& operator=(const WaitChannel&) = delete;

  // Writer (and anyone who changed what listeners wait for, e.g. a shard
  // closing): call after publishing. Costs one relaxed load while no listener
  // waits; see the file comment.
  void Notify() {
    LightBarrier();
    if (KINLET_UNLIKELY(waiters_.load(std::memory_order_relaxed) != 0)) NotifySlow();
  }

  // Sleeper: waits until `ready()` is true or `deadline` passes; returns
  // ready(). `ready` must read what the notifier published (acquire loads).
  template <typename Ready>
  bool WaitUntil(Ready&& ready, SteadyTime deadline) {
    if (ready()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    waiters_.fetch_add(1, std::memory_order_seq_cst);  // R
    // (2): puts in flight at R are visible after membarrier or after a slice.
    bool settled = SettleInFlightPuts();
    bool ok = false;
    for (;;) {
      const uint32_t epoch = epoch_.load(std::memory_order_acquire);
      armed_.fetch_or(kSleeperArmed, std::memory_order_acq_rel);  // A
      if (ready()) {
        ok = true;
        break;
      }
      const SteadyTime now = std::chrono::steady_clock::now();
      if (now >= deadline) break;
      SteadyTime until = deadline;
      if (!settled) {
        until =
            std::min(deadline, DeadlineAfter(now, std::chrono::microseconds(KINLET_WAIT_SLICE_US)));
        settled = true;  // every later sleep is untimed up to the deadline
      }
      FutexWaitUntil(&epoch_, epoch, until);
    }
    waiters_.fetch_sub(1, std::memory_order_relaxed);
    return ok;
  }
  template <typename Ready>
  bool Wait(Ready&& ready, std::chrono::nanoseconds timeout) {
    return WaitUntil(std::forward<Ready>(ready), DeadlineAfter(timeout));
  }

  // Watchers. Watch registers `w` (not armed); Unwatch removes it, after which
  // no OnNotify of it runs or is running (unless called from inside it).
  void Watch(Watcher* w) {
    LockGuard<Mutex> lock(&watch_mu_);
    w->prev_ = nullptr;
    w->next_ = watchers_;
    if (watchers_ != nullptr) watchers_->prev_ = w;
    watchers_ = w;
    w->armed_ = false;
  }
  void Unwatch(Watcher* w) {
    LockGuard<Mutex> lock(&watch_mu_);
    if (w->armed_) {
      w->armed_ = false;
      waiters_.fetch_sub(1, std::memory_order_relaxed);
    }
    if (w->prev_ != nullptr) w->prev_->next_ = w->next_;
    if (w->next_ != nullptr) w->next_->prev_ = w->prev_;
    if (watchers_ == w) watchers_ = w->next_;
    w->prev_ = w->next_ = nullptr;
  }
  // Asks for one OnNotify at the next Notify. REQUIRES: `w` is watched. The
  // caller re-checks its condition after Arm returns, and if Arm returns true
  // (a fresh registration, no membarrier) once more after a short slice
  // (KINLET_WAIT_SLICE_US): see (2) in the file comment.
  bool Arm(Watcher* w) {
    bool fresh = false;
    {
      LockGuard<Mutex> lock(&watch_mu_);
      if (!w->armed_) {
        w->armed_ = true;
        fresh = true;
        waiters_.fetch_add(1, std::memory_order_seq_cst);  // R
      }
    }
    armed_.fetch_or(kWatcherArmed, std::memory_order_acq_rel);  // A
    return fresh && !SettleInFlightPuts();
  }

 private:
  static constexpr uint32_t kSleeperArmed = 1;
  static constexpr uint32_t kWatcherArmed = 2;

  void NotifySlow() {
    const uint32_t armed = armed_.exchange(0, std::memory_order_acq_rel);  // X
    if (armed & kSleeperArmed) {
      epoch_.fetch_add(1, std::memory_order_release);
      FutexWakeAll(&epoch_);
    }
    if (armed & kWatcherArmed) {
      LockGuard<Mutex> lock(&watch_mu_);
      for (Watcher* w = watchers_; w != nullptr; w = w->next_) {
        if (!w->armed_) continue;
        w->armed_ = false;
        waiters_.fetch_sub(1, std::memory_order_relaxed);
        w->OnNotify();
      }
    }
  }

  // Registered sleepers plus armed watchers. Sleepers add/remove themselves
  // (seq_cst add: R in the file comment); watchers are added by Arm and
  // removed by the notifier that calls them (or Unwatch). Read (relaxed) by
  // every Notify: its only cost while nobody listens.
  std::atomic<uint32_t> waiters_{0};
  // Which kinds of listener armed since the last notifier cleared it. Only
  // ever accessed by RMWs (listeners fetch_or, notifiers exchange), so each
  // access reads the release sequence of the one before it: see (1).
  std::atomic<uint32_t> armed_{0};
  // Bumped by a notifier that saw a sleeper armed; the futex word.
  std::atomic<uint32_t> epoch_{0};
  // Guards the watcher list and each watcher's armed_ flag. Lock order: a
  // notifier holds the shard writer lock, then this, then whatever OnNotify
  // takes (a delivery task's lock, then its pool's).
  Mutex watch_mu_;
  Watcher* watchers_ = nullptr;  // guarded by watch_mu_
};

}  // namespace kinlet::detail
