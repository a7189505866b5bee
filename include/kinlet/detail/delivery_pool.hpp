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
#include <cstddef>
#include <cstdint>
#include <functional>
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
  virtual ~DeliveryTask();

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

  DeliveryPool* const pool_;
  const Executor executor_;
  std::mutex mu_;
  std::condition_variable idle_cv_;  // signalled when a step returns
  // Guarded by mu_:
  bool scheduled_ = false;  // on the pool's queue, handed to the executor, or running
  bool again_ = false;      // Schedule() came while running: run once more
  bool running_ = false;
  bool closed_ = false;
  std::thread::id runner_;  // the thread running the step, while running_
  // The task's place in its pool's timer heap (-1: no timer); guarded by the
  // pool's mutex. A task has at most one timer: setting it again moves it.
  ptrdiff_t timer_index_ = -1;
  // While on the pool's run queue (guarded by the pool's mutex): the next
  // task, and the reference that keeps this one alive.
  DeliveryTask* next_queued_ = nullptr;
  std::shared_ptr<DeliveryTask> queued_self_;
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
  // Stops and joins the threads; queued tasks are dropped. REQUIRES: no task
  // of this pool outlives it.
  ~DeliveryPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
    while (queue_head_ != nullptr) {
      DeliveryTask* t = queue_head_;
      queue_head_ = t->next_queued_;
      t->queued_self_.reset();  // may destroy t (its CancelTimer takes mu_)
    }
  }

  // Runs task->Dispatch() on a pool thread, after the tasks already queued.
  void Submit(std::shared_ptr<DeliveryTask> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      StartLocked();
      // An intrusive FIFO: the task keeps itself alive while queued, so a
      // put that schedules a push subscription allocates nothing.
      DeliveryTask* t = task.get();
      t->queued_self_ = std::move(task);
      t->next_queued_ = nullptr;
      (queue_tail_ != nullptr ? queue_tail_->next_queued_ : queue_head_) = t;
      queue_tail_ = t;
    }
    cv_.notify_one();
  }

  // Calls task->Schedule() at `when`, replacing the task's previous timer.
  void SetTimer(DeliveryTask* task, SteadyTime when) {
    bool earliest;
    {
      std::lock_guard<std::mutex> lock(mu_);
      StartLocked();
      if (task->timer_index_ >= 0) {
        timers_[static_cast<size_t>(task->timer_index_)].when = when;
        SiftDown(SiftUp(static_cast<size_t>(task->timer_index_)));
      } else {
        timers_.push_back(Timer{when, task});
        SiftUp(timers_.size() - 1);
      }
      earliest = timers_.front().task == task;
    }
    if (earliest) cv_.notify_one();
  }
  // Removes the task's timer, if any. After it returns no timer of it fires.
  void CancelTimer(DeliveryTask* task) {
    std::lock_guard<std::mutex> lock(mu_);
    if (task->timer_index_ >= 0) RemoveTimerLocked(static_cast<size_t>(task->timer_index_));
  }

  // Threads started so far (0 until the first use).
  size_t threads() const {
    std::lock_guard<std::mutex> lock(mu_);
    return threads_.size();
  }
  unsigned size() const { return size_; }

 private:
  // The timers: a binary min-heap on `when`, one entry per task at most, each
  // task knowing its index (so a timer moves or goes in O(log n), and the
  // heap never holds more entries than tasks). Guarded by mu_.
  struct Timer {
    SteadyTime when;
    DeliveryTask* task;
  };
  void Place(size_t i, Timer t) {
    t.task->timer_index_ = static_cast<ptrdiff_t>(i);
    timers_[i] = t;
  }
  size_t SiftUp(size_t i) {
    const Timer t = timers_[i];
    while (i > 0 && t.when < timers_[(i - 1) / 2].when) {
      Place(i, timers_[(i - 1) / 2]);
      i = (i - 1) / 2;
    }
    Place(i, t);
    return i;
  }
  size_t SiftDown(size_t i) {
    const Timer t = timers_[i];
    for (;;) {
      size_t child = 2 * i + 1;
      if (child >= timers_.size()) break;
      if (child + 1 < timers_.size() && timers_[child + 1].when < timers_[child].when) ++child;
      if (!(timers_[child].when < t.when)) break;
      Place(i, timers_[child]);
      i = child;
    }
    Place(i, t);
    return i;
  }
  void RemoveTimerLocked(size_t i) {
    timers_[i].task->timer_index_ = -1;
    const Timer last = timers_.back();
    timers_.pop_back();
    if (i < timers_.size()) {
      timers_[i] = last;
      SiftDown(SiftUp(i));
    }
  }

  void StartLocked() {
    if (!threads_.empty()) return;
    for (unsigned i = 0; i < size_; ++i) threads_.emplace_back([this] { Work(); });
  }

  void Work() {
    std::vector<std::shared_ptr<DeliveryTask>> due;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      if (stopping_) return;
      const SteadyTime now = std::chrono::steady_clock::now();
      while (!timers_.empty() && timers_.front().when <= now) {
        // A task being destroyed (no owner left) is still here until its
        // destructor's CancelTimer, which needs mu_: lock() fails, skip it.
        std::shared_ptr<DeliveryTask> task = timers_.front().task->weak_from_this().lock();
        RemoveTimerLocked(0);
        if (task != nullptr) due.push_back(std::move(task));
      }
      if (!due.empty()) {
        lock.unlock();
        for (std::shared_ptr<DeliveryTask>& task : due) task->Schedule();
        due.clear();  // may free tasks: not under the lock
        lock.lock();
        continue;
      }
      if (queue_head_ != nullptr) {
        DeliveryTask* t = queue_head_;
        queue_head_ = t->next_queued_;
        if (queue_head_ == nullptr) queue_tail_ = nullptr;
        std::shared_ptr<DeliveryTask> task = std::move(t->queued_self_);
        lock.unlock();
        task->Dispatch();
        task.reset();  // may free the task: not under the lock
        lock.lock();
        continue;
      }
      if (timers_.empty()) {
        cv_.wait(lock);
      } else {
        const SteadyTime next = timers_.front().when;  // a copy: the heap may move
        cv_.wait_until(lock, next);
      }
    }
  }

  const unsigned size_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_:
  DeliveryTask* queue_head_ = nullptr;  // the run queue, through next_queued_
  DeliveryTask* queue_tail_ = nullptr;
  std::vector<Timer> timers_;
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

inline DeliveryTask::~DeliveryTask() { pool_->CancelTimer(this); }

inline bool DeliveryTask::Close() {
  pool_->CancelTimer(this);
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
  bool timer = false;
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
        } else {
          timer = next.wake != SteadyTime::max();
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
  } else if (timer) {
    // Racing with Close is harmless: a closed task's timer schedules nothing.
    pool_->SetTimer(this, next.wake);
  }
}

}  // namespace kinlet::detail
