// kinlet/idle.hpp: what a polling reader does between reads.
//
// A reader that calls GetRecords again the moment it returns takes the shard's
// published-end cache line away from the writer on every call. Caught up, it
// reads one or two records per call and the writer pays a cross-core transfer
// for nearly every put (measured in bench/end_to_end_bench.cpp: 8.5 M records/s
// from 1 producer to 1 reader that only yields when a page is empty, 18-23 M/s
// with BackoffIdle's defaults). BackoffIdle lets records accumulate instead:
//
//  - after a light read (some records, fewer than `batch_records`) it pauses
//    for `batch_pause` so that the next read takes a batch (spinning, or
//    sleeping with `sleep_batch_pause`, for readers that share cores);
//  - after an empty read it spins (`max_spins` times `batch_pause`), then
//    yields the CPU (`max_yields` times), then parks for `min_park`, doubling
//    on each further empty read up to `max_park`;
//  - any read of `batch_records` or more resets it.
//
// Parking sleeps by default; give Idle() a park function to wait on the shard
// instead (woken by the next put: Shard::WaitForRecords). Three presets:
// Throughput() (the defaults: a reader with a core of its own), SharedCores()
// (more readers than free cores: batch by sleeping, never spin) and
// LowLatency() (poll without pausing while records flow: lowest put-to-read
// latency, a core kept busy; spin on Shard::HasRecords, one load, rather than
// on GetRecords). The policy (Next) is separate from the waiting (Idle), so it
// can be tested and reused with any wait. The pattern is Aeron's
// BackoffIdleStrategy plus the batching pause.
//
// Thread safety: one object per reader thread; not thread-safe.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <thread>

#include "absl/time/time.h"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/detail/wait.hpp"

namespace kinlet {

struct BackoffIdleOptions {
  // Reads returning fewer records than this are light: the reader pauses so
  // that the next read takes a batch. 1 turns the batching pause off.
  size_t batch_records = 64;
  // How long the batching pause lasts (spinning: the reader keeps its CPU,
  // unless sleep_batch_pause). Also the length of each empty-read spin.
  absl::Duration batch_pause = absl::Microseconds(5);
  // Empty reads answered by a pause before the reader starts yielding.
  int max_spins = 50;
  // Empty reads answered by a yield before the reader starts parking.
  int max_yields = 20;
  // First and longest park; each further empty read doubles it.
  absl::Duration min_park = absl::Microseconds(50);
  absl::Duration max_park = absl::Milliseconds(1);
  // Sleep through the batching pause instead of spinning (the pause then
  // takes at least the platform's timer slack, ~50 us on Linux).
  bool sleep_batch_pause = false;

  static BackoffIdleOptions Throughput() { return {}; }
  static BackoffIdleOptions SharedCores() {
    BackoffIdleOptions o;
    o.batch_records = 1000;
    o.batch_pause = absl::Microseconds(20);
    o.sleep_batch_pause = true;
    o.max_spins = 0;
    o.max_yields = 0;
    return o;
  }
  static BackoffIdleOptions LowLatency() {
    BackoffIdleOptions o;
    o.batch_records = 1;
    o.batch_pause = absl::ZeroDuration();
    o.max_spins = 100000;
    o.min_park = absl::Microseconds(10);
    return o;
  }
};

class BackoffIdle {
 public:
  // What the reader does next.
  struct Step {
    // kPause spins, kSleep sleeps (both for `duration`, not cut short),
    // kPark waits up to `duration` for records.
    enum class Kind { kNone, kPause, kSleep, kYield, kPark };
    Kind kind = Kind::kNone;
    absl::Duration duration;  // kPause and kPark
    bool operator==(const Step&) const = default;
  };

  explicit BackoffIdle(BackoffIdleOptions options = {}) : options_(options) {}

  // The step after a read that returned `records`, advancing the backoff.
  // kNone for a full batch (read again now). Never blocks.
  Step Next(size_t records) {
    if (records >= options_.batch_records) {
      Reset();
      return {};
    }
    if (records > 0) {
      Reset();
      return {options_.sleep_batch_pause ? Step::Kind::kSleep : Step::Kind::kPause,
              options_.batch_pause};
    }
    if (spins_ < options_.max_spins) {
      ++spins_;
      return {Step::Kind::kPause, options_.batch_pause};
    }
    if (yields_ < options_.max_yields) {
      ++yields_;
      return {Step::Kind::kYield, absl::ZeroDuration()};
    }
    const absl::Duration park = park_;
    park_ = std::min(park_ * 2, options_.max_park);
    return {Step::Kind::kPark, park};
  }

  // Call after each read with the number of records it returned: does Next's
  // step, parking by sleeping.
  void Idle(size_t records) { Idle(records, &BackoffIdle::Sleep); }
  // As above, parking with `park(duration)`, which may return early (for
  // example when records arrive: [&](absl::Duration d) {
  // shard->WaitForRecords(iterator, d); }).
  template <typename Park>
  void Idle(size_t records, Park&& park) {
    const Step step = Next(records);
    switch (step.kind) {
      case Step::Kind::kNone:
        return;
      case Step::Kind::kPause:
        Pause(step.duration);
        return;
      case Step::Kind::kSleep:
        Sleep(step.duration);
        return;
      case Step::Kind::kYield:
        std::this_thread::yield();
        return;
      case Step::Kind::kPark:
        park(step.duration);
        return;
    }
  }

  // Back to the start of the backoff (as after a full read).
  void Reset() {
    spins_ = 0;
    yields_ = 0;
    park_ = options_.min_park;
  }

  const BackoffIdleOptions& options() const { return options_; }

  // Spins for `d` with the CPU's pause hint, keeping the CPU.
  static void Pause(absl::Duration d) {
    if (d <= absl::ZeroDuration()) return;
    const auto until = detail::DeadlineAfter(d);  // saturates: no overflow
    do {
      for (int i = 0; i < 8; ++i) KINLET_DETAIL_PAUSE();
    } while (std::chrono::steady_clock::now() < until);
  }
  static void Sleep(absl::Duration d) { std::this_thread::sleep_for(absl::ToChronoNanoseconds(d)); }

 private:
  BackoffIdleOptions options_;
  int spins_ = 0;
  int yields_ = 0;
  absl::Duration park_ = options_.min_park;
};

}  // namespace kinlet
