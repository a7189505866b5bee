// kinlet/detail/delivery_pool.hpp: the small shared thread pool that runs push
// subscriptions' deliveries, and the task each subscription is on it.
//
// A DeliveryTask is one subscription's delivery, run as a series of steps
// (Step(): deliver at most one event, then say what next). A task is queued
// at most once and never runs on two threads at once, so its events keep
// their order; after each delivered event it goes to the back of the queue,
// so a busy subscription cannot starve the others. An idle task is on no
// queue and no thread: it is woken by Schedule() (the shard's WaitChannel
// calls it from the put that publishes, see wait.hpp), or by its timer (the
// next heartbeat, the read budget refilling, the one re-check after arming).
//
// One pool per process (DeliveryPool::Shared()), sized to the cores
// (std::thread::hardware_concurrency(), at least 1) and started on first use:
// delivery is CPU work on the caller's callbacks, so the cores, not the
// number of streams or subscriptions, bound how much of it can run at once; a
// pool per stream would bring back a thread count that grows with the
// streams. A subscription given an Executor runs its steps there instead
// (the pool only keeps its timer and hands the task over).
//
// Thread safety: every public member is thread-safe.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "kinlet/detail/wait.hpp"

namespace kinlet::detail {

class DeliveryPool;

class DeliveryTask : public std::enable_shared_from_this<DeliveryTask> {
 public:
  using Executor = std::function<void(std::function<void()>)>;

  // What a step asks for next.
  struct Next {
    enum Kind {
      kAgain,  // run again soon (after the tasks already queued)
      kIdle,   // nothing to do: run at `wake`, or at the next Schedule if earlier
      kDone,   // finished: never run again
    };
    Kind kind = kAgain;
    SteadyTime wake = SteadyTime::max();
  };

  // Steps run on `pool`'s threads, or as tasks on `executor` if it is set.
  DeliveryTask(DeliveryPool* pool, Executor executor)
      : pool_(pool), executor_(std::move(executor)) {}
  DeliveryTask(const DeliveryTask&) = delete;
  DeliveryTask& operator=(const DeliveryTask&) = delete;
  virtual ~DeliveryTask() = default;

  // Asks for a step soon. Cheap, never blocks on a step; a no-op once closed.
  // REQUIRES: the task is owned by a shared_ptr.
  void Schedule();

  // Stops the task: no step starts after it returns, and the step in progress
  // (if any) has returned, unless Close is called from inside that step (then
  // it returns at once; the step's caller must touch nothing the task's owner
  // frees). Returns whether it was called from inside a step.
  bool Close();

 protected:
  // One step. Runs on one thread at a time, never after Close returned.
  virtual Next Step() = 0;

 private:
  friend class DeliveryPool;

  void Dispatch();  // on a pool thread: run a step, or hand it to the executor
  void Execute();   // runs one step and acts on its Next
  void OnTimer(uint64_t generation);

  DeliveryPool* const pool_;
  const Executor executor_;
  std::mutex mu_;
  std::condition_variable idle_cv_;  // signalled when a step returns
  // Guarded by mu_:
  bool scheduled_ = false;  // on the pool's queue, handed to the executor, or running
  bool again_ = false;      // Schedule() came while running: run once more
  bool running_ = false;
  bool closed_ = false;
  std::thread::id runner_;         // the thread running the step, while running_
  uint64_t timer_generation_ = 0;  // a timer whose generation differs is stale
};

class DeliveryPool {
 public:
  // The process's pool: hardware_concurrency() threads, started on first use,
  // never destroyed (a subscription may be destroyed by a static destructor).
  static DeliveryPool& Shared() {
    static DeliveryPool* pool = new DeliveryPool(0);
    return *pool;
  }

  // A pool of `threads` threads (0: hardware_concurrency(), at least 1),
  // started when the first task or timer is submitted.
  explicit DeliveryPool(unsigned threads)
      : size_(threads != 0 ? threads : std::max(1u, std::thread::hardware_concurrency())) {}
  DeliveryPool(const DeliveryPool&) = delete;
  DeliveryPool& operator=(const DeliveryPool&) = delete;
  // Stops and joins the threads; queued tasks are dropped.
  ~DeliveryPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  // Runs task->Dispatch() on a pool thread, after the tasks already queued.
  void Submit(std::shared_ptr<DeliveryTask> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      StartLocked();
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

  // Calls task->OnTimer(generation) at `when` (if the task still exists).
  void RunAt(std::weak_ptr<DeliveryTask> task, uint64_t generation, SteadyTime when) {
    bool earliest;
    {
      std::lock_guard<std::mutex> lock(mu_);
      StartLocked();
      earliest = timers_.empty() || when < timers_.begin()->first;
      timers_.emplace(when, Timer{std::move(task), generation});
    }
    if (earliest) cv_.notify_one();
  }

  // Threads started so far (0 until the first use).
  size_t threads() const {
    std::lock_guard<std::mutex> lock(mu_);
    return threads_.size();
  }
  unsigned size() const { return size_; }

 private:
  struct Timer {
    std::weak_ptr<DeliveryTask> task;
    uint64_t generation;
  };

  void StartLocked() {
    if (!threads_.empty()) return;
    for (unsigned i = 0; i < size_; ++i) threads_.emplace_back([this] { Work(); });
  }

  void Work() {
    std::vector<Timer> due;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      if (stopping_) return;
      const SteadyTime now = std::chrono::steady_clock::now();
      while (!timers_.empty() && timers_.begin()->first <= now) {
        due.push_back(std::move(timers_.begin()->second));
        timers_.erase(timers_.begin());
      }
      if (!due.empty()) {
        lock.unlock();
        for (Timer& t : due) {
          if (std::shared_ptr<DeliveryTask> task = t.task.lock()) task->OnTimer(t.generation);
        }
        due.clear();
        lock.lock();
        continue;
      }
      if (!queue_.empty()) {
        std::shared_ptr<DeliveryTask> task = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();
        task->Dispatch();
        task.reset();  // may free the task: not under the lock
        lock.lock();
        continue;
      }
      if (timers_.empty()) {
        cv_.wait(lock);
      } else {
        cv_.wait_until(lock, timers_.begin()->first);
      }
    }
  }

  const unsigned size_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_:
  std::deque<std::shared_ptr<DeliveryTask>> queue_;
  std::multimap<SteadyTime, Timer> timers_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

// --- DeliveryTask ---------------------------------------------------------------

inline void DeliveryTask::Schedule() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    if (running_) {
      again_ = true;
      return;
    }
    if (scheduled_) return;
    scheduled_ = true;
  }
  pool_->Submit(shared_from_this());
}

inline bool DeliveryTask::Close() {
  std::unique_lock<std::mutex> lock(mu_);
  closed_ = true;
  if (running_ && runner_ == std::this_thread::get_id()) return true;
  idle_cv_.wait(lock, [&] { return !running_; });
  return false;
}

inline void DeliveryTask::Dispatch() {
  if (!executor_) {
    Execute();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
  }
  executor_([self = shared_from_this()] { self->Execute(); });
}

inline void DeliveryTask::Execute() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    running_ = true;
    again_ = false;
    runner_ = std::this_thread::get_id();
  }
  const Next next = Step();
  bool resubmit = false;
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_ = false;
    runner_ = std::thread::id();
    if (!closed_) {
      if (next.kind == Next::kAgain || (next.kind == Next::kIdle && again_)) {
        resubmit = true;  // still scheduled_
      } else {
        scheduled_ = false;
        if (next.kind == Next::kDone) {
          closed_ = true;
        } else if (next.wake != SteadyTime::max()) {
          generation = ++timer_generation_;
        }
      }
    }
    again_ = false;
  }
  idle_cv_.notify_all();
  // The task's owner may free what Step used once Close returns: from here on
  // only the task itself (kept alive by the caller's shared_ptr) is touched.
  if (resubmit) {
    pool_->Submit(shared_from_this());
  } else if (generation != 0) {
    pool_->RunAt(weak_from_this(), generation, next.wake);
  }
}

inline void DeliveryTask::OnTimer(uint64_t generation) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || generation != timer_generation_) return;
  }
  Schedule();
}

}  // namespace kinlet::detail
