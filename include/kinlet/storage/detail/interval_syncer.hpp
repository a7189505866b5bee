// kinlet/storage/detail/interval_syncer.hpp: the one background thread that
// fsyncs every SyncPolicy::kInterval log of the process.
//
// A log registers itself (Register) with its interval and unregisters in its
// destructor (Unregister, which waits for a sync of that log in progress, so
// the log is never called after it returns). The thread starts with the first
// registration and is stopped and joined at static destruction.
//
// Thread safety: all members are thread-safe. targets_ and running_ are
// guarded by mu_; cv_ signals registrations, stop and the end of a sync.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "absl/time/time.h"

namespace kinlet::storage::detail {

// What the syncer calls: fsync whatever is dirty. Must not call back into
// the syncer.
class IntervalSyncTarget {
 public:
  virtual void IntervalSync() = 0;

 protected:
  ~IntervalSyncTarget() = default;
};

class IntervalSyncer {
 public:
  static IntervalSyncer& Instance() {
    static IntervalSyncer syncer;
    return syncer;
  }

  // `target` is synced every `interval` until Unregister(target).
  void Register(IntervalSyncTarget* target, absl::Duration interval) {
    std::unique_lock<std::mutex> l(mu_);
    auto every = absl::ToChronoNanoseconds(interval);
    if (every <= std::chrono::nanoseconds::zero()) every = std::chrono::milliseconds(1);
    targets_[target] = Entry{every, Clock::now() + every};
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
    cv_.notify_all();
  }

  // After it returns the syncer never calls `target` again.
  void Unregister(IntervalSyncTarget* target) {
    std::unique_lock<std::mutex> l(mu_);
    targets_.erase(target);
    cv_.wait(l, [&] { return running_ != target; });
  }

  ~IntervalSyncer() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    std::chrono::nanoseconds every;
    Clock::time_point due;
  };

  IntervalSyncer() = default;

  void Run() {
    std::unique_lock<std::mutex> l(mu_);
    while (!stop_) {
      if (targets_.empty()) {
        cv_.wait(l);
        continue;
      }
      IntervalSyncTarget* next = nullptr;
      Clock::time_point due = Clock::time_point::max();
      for (const auto& [t, e] : targets_) {
        if (e.due < due) {
          due = e.due;
          next = t;
        }
      }
      if (Clock::now() < due) {
        cv_.wait_until(l, due);
        continue;  // re-evaluate: registrations may have changed
      }
      running_ = next;
      l.unlock();
      next->IntervalSync();
      l.lock();
      running_ = nullptr;
      auto it = targets_.find(next);
      if (it != targets_.end()) it->second.due = Clock::now() + it->second.every;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<IntervalSyncTarget*, Entry> targets_;
  IntervalSyncTarget* running_ = nullptr;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kinlet::storage::detail
