// kinlet/detail/epoch.hpp: safe memory reclamation for what lock-free readers
// and writers reach through raw pointers: a stream's routing tables, its shards
// (through the shard table) and its fault configurations.
//
// A thread touches such an object only inside a ReadSection. An updater first
// unpublishes the object (no new section can reach it), then calls
// Synchronize(), which returns once every section that might still hold it has
// ended; then the object can be freed. This is read-copy-update with the
// membarrier flavour of liburcu:
//
//  - A section's entry stores the domain's epoch into the thread's record
//    (relaxed) and issues only a compiler barrier; its exit stores 0 (release).
//    Two plain stores to a line the thread owns: no contended write, no fence.
//  - Synchronize bumps the epoch, then runs membarrier(PRIVATE_EXPEDITED),
//    which makes every running thread of the process execute a full barrier,
//    then waits for each record whose epoch is nonzero and older than the new
//    one to go to 0. A reader whose record store the scan missed was, by the
//    barrier, ordered after it, so its pointer loads come after the unpublish
//    and cannot reach the retired object (the asymmetric Dekker of
//    liburcu-memb and folly's AsymmetricMemoryBarrier). Readers that entered
//    after the bump (epoch >= target) are not waited for, so a thread that
//    enters and leaves sections back to back cannot starve an updater.
//  - Where membarrier is unavailable (old kernel, seccomp) and in
//    ThreadSanitizer builds, entry adds a seq_cst fence instead (TSan then sees
//    the release/acquire pair on the record that orders a reader's last access
//    before the free).
//
// Rules: never block in a section (no sleep, no wait for a put, no callback
// into user code): hold an owning handle (shared_ptr) across a wait instead.
// Sections nest. Synchronize must not be called from inside a section (it
// returns false and does nothing then), nor while holding a lock that a reader
// inside a section may wait for (a shard's writer lock).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>

#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "kinlet/config.hpp"

namespace kinlet::detail {

// One per thread that has entered a section (reused after the thread exits).
struct alignas(KINLET_CACHE_LINE_SIZE) EpochRecord {
  // 0 outside any section; else the domain epoch when the outermost section
  // began. Written by the owning thread only; read by Synchronize.
  std::atomic<uint64_t> epoch{0};
  uint32_t nesting = 0;  // the owning thread's only
  // Domain bookkeeping, under the domain's mutex.
  EpochRecord* next = nullptr;
  bool in_use = false;
};

class EpochDomain {
 public:
  constexpr EpochDomain() = default;
  EpochDomain(const EpochDomain&) = delete;
  EpochDomain& operator=(const EpochDomain&) = delete;

  // The process-wide domain (never destroyed: threads may use it during exit).
  static EpochDomain& Global() {
    static EpochDomain* const domain = new EpochDomain();
    return *domain;
  }

  // A free record for the calling thread (registers membarrier on first use).
  EpochRecord* Acquire() {
    std::lock_guard<std::mutex> lock(mu_);
    InitLocked();
    for (EpochRecord* r = records_; r != nullptr; r = r->next) {
      if (!r->in_use) {
        r->in_use = true;
        return r;
      }
    }
    auto* r = new EpochRecord();
    r->in_use = true;
    r->next = records_;
    records_ = r;
    return r;
  }
  void Release(EpochRecord* r) {
    std::lock_guard<std::mutex> lock(mu_);
    r->in_use = false;
  }

  bool fenced() const { return fenced_.load(std::memory_order_relaxed); }
  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }

  // Waits until every section open at the call has ended. Returns false (and
  // waits for nothing) if called from inside a section of this thread.
  bool Synchronize();

  // Sections currently open (for tests).
  int OpenSections() {
    std::lock_guard<std::mutex> lock(mu_);
    int open = 0;
    for (EpochRecord* r = records_; r != nullptr; r = r->next) {
      open += r->epoch.load(std::memory_order_acquire) != 0 ? 1 : 0;
    }
    return open;
  }

 private:
  void InitLocked() {
    if (initialised_) return;
    initialised_ = true;
    bool membarrier = false;
#if !KINLET_ATOMIC_COPY && defined(__linux__) && defined(__NR_membarrier)
    membarrier = syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
    fenced_.store(!membarrier, std::memory_order_relaxed);
  }

  // The full barrier on every running thread of the process (or nothing, in
  // fenced mode, where readers fence themselves).
  void HeavyBarrierLocked() {
#if !KINLET_ATOMIC_COPY && defined(__linux__) && defined(__NR_membarrier)
    if (!fenced_.load(std::memory_order_relaxed) &&
        syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
      // Registered but refused now: cannot happen per the kernel's contract;
      // fall back to fenced readers from here on and wait one scheduling round.
      fenced_.store(true, std::memory_order_seq_cst);
      std::this_thread::yield();
    }
#endif
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }

  std::mutex mu_;
  EpochRecord* records_ = nullptr;  // under mu_; never freed
  bool initialised_ = false;        // under mu_
  // Set once before the first record is handed out (under mu_, which every
  // reader's registration takes), read relaxed by every section entry.
  std::atomic<bool> fenced_{true};
  std::atomic<uint64_t> epoch_{1};
};

// The calling thread's record: a trivially initialised thread_local, so the
// fast path is one TLS load with no guard.
inline thread_local EpochRecord* tls_epoch_record = nullptr;

struct EpochRecordReleaser {
  EpochRecord* record = nullptr;
  ~EpochRecordReleaser() {
    if (record != nullptr) {
      tls_epoch_record = nullptr;
      EpochDomain::Global().Release(record);
    }
  }
};

inline EpochRecord* RegisterEpochThread() {
  thread_local EpochRecordReleaser releaser;  // returns the record at thread exit
  if (releaser.record == nullptr) releaser.record = EpochDomain::Global().Acquire();
  tls_epoch_record = releaser.record;
  return releaser.record;
}

// RAII: the calling thread is inside a section while it lives. Cheap enough
// for every put and read: two thread-local stores and a relaxed load.
class ReadSection {
 public:
  ReadSection() {
    EpochRecord* r = tls_epoch_record;
    if (KINLET_UNLIKELY(r == nullptr)) r = RegisterEpochThread();
    record_ = r;
    if (r->nesting++ == 0) {
      EpochDomain& domain = EpochDomain::Global();
      r->epoch.store(domain.epoch(), std::memory_order_relaxed);
      if (KINLET_UNLIKELY(domain.fenced())) {
        std::atomic_thread_fence(std::memory_order_seq_cst);
      } else {
        std::atomic_signal_fence(std::memory_order_seq_cst);
      }
    }
  }
  ~ReadSection() {
    if (--record_->nesting == 0) record_->epoch.store(0, std::memory_order_release);
  }
  ReadSection(const ReadSection&) = delete;
  ReadSection& operator=(const ReadSection&) = delete;

 private:
  EpochRecord* record_;
};

inline bool InReadSection() {
  const EpochRecord* r = tls_epoch_record;
  return r != nullptr && r->nesting != 0;
}

inline bool EpochDomain::Synchronize() {
  if (InReadSection()) return false;
  // acq_rel: a section that reads the new epoch (acquire) also sees every
  // unpublish that preceded this call, so it is not waited for.
  const uint64_t target = epoch_.fetch_add(1, std::memory_order_acq_rel) + 1;
  std::lock_guard<std::mutex> lock(mu_);
  InitLocked();
  HeavyBarrierLocked();
  for (EpochRecord* r = records_; r != nullptr; r = r->next) {
    for (int spins = 0;; ++spins) {
      const uint64_t e = r->epoch.load(std::memory_order_acquire);
      if (e == 0 || e >= target) break;
      if (spins > 64) std::this_thread::yield();
    }
  }
  return true;
}

}  // namespace kinlet::detail
