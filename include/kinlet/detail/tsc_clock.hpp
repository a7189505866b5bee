// kinlet/detail/tsc_clock.hpp: wall time from the CPU's time-stamp counter,
// calibrated against CLOCK_REALTIME (the mechanism behind kinlet::SystemClock).
//
// A read is one RDTSC and a few loads from one or two cache lines that change
// only at recalibration: ns = base_ns + ((tsc - base_tsc) * mult) >> 32.
//
// Modes (decided at first use, process-wide):
//  - kTsc: on x86-64 when the TSC is invariant (CPUID 0x80000007 EDX bit 8)
//    and the kernel's clocksource is "tsc" (the kernel checked at boot, and
//    its watchdog keeps checking, that the TSCs of all CPUs agree; when it
//    finds they do not it switches to hpet/acpi_pm, and so do we). A host
//    whose kernel uses another clocksource (kvm-clock, hpet) falls back.
//  - kRealtime: clock_gettime(CLOCK_REALTIME) per read; on other
//    architectures, where the checks fail, or when the environment says
//    KINLET_CLOCK=realtime.
//
// Calibration. At first use: two (TSC, CLOCK_REALTIME) pairs kInitialSpan
// apart (about 0.5 ms, on the first put). Then every `period` (100 ms by
// default) of TSC time, the first reader that notices claims the
// recalibration with a CAS (others never wait for it, see below) and:
// measures a new pair (CLOCK_REALTIME bracketed by ordered TSC reads, best of
// kPairTries), re-estimates the frequency from the previous pair (a change
// over kMaxFrequencyChange is a step of the system clock, not the TSC: the old
// frequency is kept), and publishes a new line that starts where the old one
// could at most have reached and aims at CLOCK_REALTIME at the end of the next
// period: forward errors (the clock behind) are jumped at once, backward ones
// (the clock ahead) slewed over the period, or held when larger than a period.
//
// Publication: two parameter slots and a version; the writer fills the slot
// readers are not using, then stores the version (release). A reader loads the
// version, the slot, and the version again, and retries if it moved (only
// when two recalibrations overtook it). Every payload word is an atomic
// (release stores, acquire loads: plain moves on x86-64) so the protocol is
// data-race-free and ThreadSanitizer checks it. Readers write nothing shared.
//
// Guarantees (kTsc):
//  - Monotonic across recalibrations, for all threads together: every line
//    is clamped at its end point `hard` (a reader past it while another
//    thread recalibrates waits up to kLoserWaitNs for the new line, then
//    holds at that end point), and the next line starts at a value no lower
//    than that end point. Within one line a read is non-decreasing in the TSC
//    value read (slopes are >= 0), so a thread's reads never go back as long
//    as its successive RDTSCs do (RDTSC is not ordered with neighbouring
//    instructions; an ordering fence would double its cost, and the loads
//    between two reads of one thread keep them apart in practice). Readers on
//    different CPUs rely on the TSCs being synchronised, which the
//    clocksource check vouches for.
//  - Bound: |clock - CLOCK_REALTIME| <= kBoundNs (1 ms) while CLOCK_REALTIME
//    is not stepped and the recalibrating thread is not descheduled for
//    longer than the bound. The error is made of: the pair's uncertainty
//    (half the bracket, < 10 us: wider brackets are retried), the frequency
//    error over one period (pair uncertainty / period, plus NTP's slew of at
//    most 500 ppm: <= 60 us over 100 ms), and the hold at a line's end (at
//    most kGraceNs = 20 us). Typically under 20 us here.
//  - After a step of CLOCK_REALTIME: forward, the next recalibration (within
//    one period) jumps to it; backward by D, the clock holds (never goes
//    back) until CLOCK_REALTIME catches up, that is D later, or slews within
//    one period when D is smaller than a period.
//
// kRealtime is CLOCK_REALTIME itself: it steps back when the system clock is
// set back (arrival timestamps stay non-decreasing per shard: the shard
// clamps them).
#pragma once

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <x86intrin.h>
#define KINLET_HAVE_TSC 1
#else
#define KINLET_HAVE_TSC 0
#endif

#include "absl/base/attributes.h"
#include "kinlet/config.hpp"

namespace kinlet::detail {

// Which source a TscClock reads.
enum class ClockMode : int {
  kUninitialized = 0,  // before the first read
  kTsc = 1,
  kRealtime = 2,
};

// Options of the process-wide TSC clock, for tests (TscClock::ResetForTest).
struct TscClockOptions {
  enum class Force { kAuto, kTsc, kRealtime };
  // kAuto: the checks above (and KINLET_CLOCK); kTsc: the TSC whenever the
  // CPU has one (skips the invariance and clocksource checks); kRealtime: the
  // fallback.
  Force force = Force::kAuto;
  // Honour KINLET_CLOCK=realtime (read at (re)initialisation).
  bool honor_env = true;
  // Recalibration period in TSC time.
  int64_t period_ns = 100'000'000;
  // Test hook: every published slope is multiplied by (1 + frequency_error),
  // a wrong frequency the bound test must catch.
  double frequency_error = 0;
};

// CLOCK_REALTIME in Unix nanoseconds.
inline int64_t RealtimeNanos() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// One published line. Written only by the claim holder, into the slot the
// version does not name; read by everyone (acquire loads, see NowNanos).
struct TscClockSlot {
  std::atomic<uint64_t> base_tsc{0};
  std::atomic<int64_t> base_ns{0};
  std::atomic<uint64_t> mult{0};  // ns per tick << 32
  std::atomic<uint64_t> soft{0};  // ticks after base_tsc: recalibrate from there
  std::atomic<uint64_t> hard{0};  // ticks after base_tsc: the line ends there
};
struct TscClockPair {
  uint64_t tsc;
  int64_t ns;
};
struct TscClockState {
  // Read by every reader; written at (re)initialisation and recalibration.
  alignas(KINLET_CACHE_LINE_SIZE) std::atomic<ClockMode> mode{ClockMode::kUninitialized};
  std::atomic<uint64_t> version{0};  // slots[version & 1] is current
  TscClockSlot slots[2];
  // The claim (CAS acquire, store release): whoever holds it writes slots,
  // version, mode and everything below. On its own line: readers do not
  // touch it on the fast path.
  alignas(KINLET_CACHE_LINE_SIZE) std::atomic<bool> claim{false};
  TscClockOptions options;
  TscClockPair prev{0, 0};  // the last calibration pair
  double ns_per_tick = 0;   // the frequency estimate
  uint64_t period_ticks = 0;
  uint64_t grace_ticks = 0;
  std::atomic<uint64_t> recalibrations{0};
  std::atomic<uint64_t> steps{0};
  std::atomic<int64_t> offset_ns{0};  // SetCalibrationOffsetForTest
};

// The one TSC clock of the process.
ABSL_CONST_INIT inline TscClockState tsc_clock_state{};

// The process-wide TSC clock. All members are static; thread-safe unless said.
class TscClock {
 public:
  static constexpr int64_t kBoundNs = 1'000'000;       // the stated bound
  static constexpr int64_t kGraceNs = 20'000;          // a line's end beyond its period
  static constexpr int64_t kInitialSpanNs = 500'000;   // first calibration
  static constexpr int64_t kLoserWaitNs = 1'000'000;   // see "Guarantees"
  static constexpr double kMaxFrequencyChange = 1e-3;  // beyond: a step, not a drift
  static constexpr int kPairTries = 5;
  static constexpr uint64_t kMaxPairBracketNs = 10'000;  // wider pairs are retried

  // Unix nanoseconds. The first call in the process (or after ResetForTest)
  // decides the mode and calibrates (about 0.5 ms; concurrent first callers
  // wait for it). Thread-safe, lock-free after that.
  ABSL_ATTRIBUTE_ALWAYS_INLINE static int64_t NowNanos() {
#if KINLET_HAVE_TSC
    State& s = tsc_clock_state;
    for (;;) {
      if (KINLET_UNLIKELY(s.mode.load(std::memory_order_acquire) != ClockMode::kTsc)) {
        return NotTsc();
      }
      const uint64_t v = s.version.load(std::memory_order_acquire);
      const Slot& slot = s.slots[v & 1];
      const uint64_t tsc = __rdtsc();
      const uint64_t base_tsc = slot.base_tsc.load(std::memory_order_acquire);
      const int64_t base_ns = slot.base_ns.load(std::memory_order_acquire);
      const uint64_t mult = slot.mult.load(std::memory_order_acquire);
      const uint64_t soft = slot.soft.load(std::memory_order_acquire);
      // The acquire loads above keep this load after them (the seqlock check).
      if (KINLET_UNLIKELY(s.version.load(std::memory_order_relaxed) != v)) continue;
      const uint64_t delta = tsc - base_tsc;
      if (KINLET_LIKELY(delta < soft)) return base_ns + static_cast<int64_t>(MulShift(delta, mult));
      int64_t ns;
      if (Slow(v, delta, base_ns, mult, slot.hard.load(std::memory_order_acquire), &ns)) return ns;
    }
#else
    return NotTsc();
#endif
  }

  // The mode in use (initialising if needed).
  static ClockMode Mode() {
    if (tsc_clock_state.mode.load(std::memory_order_acquire) == ClockMode::kUninitialized)
      Initialize();
    return tsc_clock_state.mode.load(std::memory_order_acquire);
  }

  // Whether this CPU and kernel qualify for kTsc (the checks of kAuto), and
  // why not in `why` when it is given.
  static bool TscUsable(const char** why = nullptr) {
    const char* reason = nullptr;
#if KINLET_HAVE_TSC
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(0x80000000u, &eax, &ebx, &ecx, &edx) || eax < 0x80000007u) {
      reason = "no CPUID leaf 0x80000007";
    } else {
      __get_cpuid(0x80000007u, &eax, &ebx, &ecx, &edx);
      if ((edx & (1u << 8)) == 0) reason = "the TSC is not invariant";
    }
    if (reason == nullptr) {
      // Unknown (no sysfs, as in some containers): trust CPUID.
      if (FILE* f =
              std::fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r")) {
        char buf[64] = {};
        const size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
        std::fclose(f);
        if (n > 0 && std::strncmp(buf, "tsc", 3) != 0)
          reason = "the kernel's clocksource is not tsc";
      }
    }
#else
    reason = "not x86-64";
#endif
    if (why != nullptr) *why = reason;
    return reason == nullptr;
  }

  // Recalibrations so far (tests). Thread-safe.
  static uint64_t Recalibrations() {
    return tsc_clock_state.recalibrations.load(std::memory_order_relaxed);
  }

  // Tests only: calibration reads CLOCK_REALTIME + `offset_ns` from now on,
  // as if the system clock had been stepped by it (stepping it for real needs
  // privileges). Thread-safe.
  static void SetCalibrationOffsetForTest(int64_t offset_ns) {
    tsc_clock_state.offset_ns.store(offset_ns, std::memory_order_relaxed);
  }

  // Steps of CLOCK_REALTIME seen (a frequency estimate kept) so far (tests).
  static uint64_t StepsSeen() { return tsc_clock_state.steps.load(std::memory_order_relaxed); }

  // Tests only: forgets the calibration and takes `options`; the next read
  // initialises again. Safe against concurrent readers (they wait for the
  // new initialisation) but time may then go back across the reset.
  static void ResetForTest(const TscClockOptions& options) {
    State& s = tsc_clock_state;
    while (!TryClaim()) std::this_thread::yield();
    s.options = options;
    s.mode.store(ClockMode::kUninitialized, std::memory_order_release);
    ReleaseClaim();
  }

 private:
  using Slot = TscClockSlot;
  using Pair = TscClockPair;
  using State = TscClockState;

  static uint64_t MulShift(uint64_t delta, uint64_t mult) {
    __extension__ using U128 = unsigned __int128;
    return static_cast<uint64_t>((static_cast<U128>(delta) * mult) >> 32);
  }

  static bool TryClaim() {
    State& s = tsc_clock_state;
    return !s.claim.load(std::memory_order_relaxed) &&
           !s.claim.exchange(true, std::memory_order_acquire);
  }
  static void ReleaseClaim() { tsc_clock_state.claim.store(false, std::memory_order_release); }

  // Not (yet) in kTsc: initialise, or read CLOCK_REALTIME.
  ABSL_ATTRIBUTE_NOINLINE static int64_t NotTsc() {
    for (;;) {
      switch (tsc_clock_state.mode.load(std::memory_order_acquire)) {
        case ClockMode::kRealtime:
          return RealtimeNanos();
        case ClockMode::kTsc:
          return NowNanos();
        case ClockMode::kUninitialized:
          Initialize();
          break;
      }
    }
  }

#if KINLET_HAVE_TSC
  static uint64_t OrderedTsc() {
    _mm_lfence();
    const uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
  }

  // A (TSC, CLOCK_REALTIME) pair: the narrowest bracket of kPairTries, tried
  // again (up to 4 rounds) while that is wider than kMaxPairBracketNs (an
  // interrupt or a preemption inside the bracket).
  static Pair MeasurePair() {
    const State& s = tsc_clock_state;
    // Before the first estimate, assume a TSC of at most 4 GHz.
    const double ns_per_tick = s.ns_per_tick > 0 ? s.ns_per_tick : 0.25;
    const auto max_width =
        static_cast<uint64_t>(static_cast<double>(kMaxPairBracketNs) / ns_per_tick);
    Pair best{0, 0};
    uint64_t best_width = ~uint64_t{0};
    for (int round = 0; round < 4 && best_width > max_width; ++round) {
      for (int i = 0; i < kPairTries; ++i) {
        const uint64_t a = OrderedTsc();
        const int64_t ns = RealtimeNanos() + s.offset_ns.load(std::memory_order_relaxed);
        const uint64_t b = OrderedTsc();
        if (b - a < best_width) {
          best_width = b - a;
          best = Pair{a + (b - a) / 2, ns};
        }
      }
    }
    return best;
  }

  // Past the fast path: before the line (a new line starts ahead of the
  // reader's TSC: hold at its start) or past its soft end. Returns false to
  // retry with a new line.
  ABSL_ATTRIBUTE_NOINLINE static bool Slow(uint64_t v, uint64_t delta, int64_t base_ns,
                                           uint64_t mult, uint64_t hard, int64_t* ns) {
    State& s = tsc_clock_state;
    if (static_cast<int64_t>(delta) < 0) {
      *ns = base_ns;
      return true;
    }
    if (TryClaim()) {
      if (s.mode.load(std::memory_order_relaxed) == ClockMode::kTsc &&
          s.version.load(std::memory_order_relaxed) == v) {
        Recalibrate();
      }
      ReleaseClaim();
      return false;
    }
    if (delta < hard) {
      *ns = base_ns + static_cast<int64_t>(MulShift(delta, mult));
      return true;
    }
    // Past the line's end while another thread recalibrates: wait a little
    // for the new line, then hold at the end (never beyond: the next line
    // starts there).
    const int64_t give_up = RealtimeNanos() + kLoserWaitNs;
    while (s.version.load(std::memory_order_acquire) == v &&
           s.mode.load(std::memory_order_acquire) == ClockMode::kTsc) {
      if (RealtimeNanos() > give_up) {
        *ns = base_ns + static_cast<int64_t>(MulShift(hard, mult));
        return true;
      }
      std::this_thread::yield();
    }
    return false;
  }

  // Publishes the line (base, base_ns, slope); claim held.
  static void Publish(uint64_t base, int64_t base_ns, double slope) {
    State& s = tsc_clock_state;
    const uint64_t v = s.version.load(std::memory_order_relaxed) + 1;
    Slot& slot = s.slots[v & 1];
    slope *= 1 + s.options.frequency_error;
    const uint64_t mult = static_cast<uint64_t>(std::llround(std::max(0.0, slope) * 4294967296.0));
    slot.base_tsc.store(base, std::memory_order_release);
    slot.base_ns.store(base_ns, std::memory_order_release);
    slot.mult.store(mult, std::memory_order_release);
    slot.soft.store(s.period_ticks, std::memory_order_release);
    slot.hard.store(s.period_ticks + s.grace_ticks, std::memory_order_release);
    s.version.store(v, std::memory_order_release);
  }

  // Claim held, mode kTsc.
  static void Recalibrate() {
    State& s = tsc_clock_state;
    const Pair p = MeasurePair();
    if (p.tsc > s.prev.tsc) {
      const double f =
          static_cast<double>(p.ns - s.prev.ns) / static_cast<double>(p.tsc - s.prev.tsc);
      if (std::fabs(f / s.ns_per_tick - 1) <= kMaxFrequencyChange) {
        s.ns_per_tick = f;
      } else {
        s.steps.fetch_add(1, std::memory_order_relaxed);
      }
    }
    s.prev = p;
    const double f = s.ns_per_tick;
    auto target = [&](uint64_t x) -> int64_t {
      return p.ns + std::llround(static_cast<double>(static_cast<int64_t>(x - p.tsc)) * f);
    };
    // The current line's end: no reader of it saw more than its value there.
    const Slot& old = s.slots[s.version.load(std::memory_order_relaxed) & 1];
    const uint64_t old_base = old.base_tsc.load(std::memory_order_relaxed);
    const uint64_t old_hard = old.hard.load(std::memory_order_relaxed);
    const int64_t old_end =
        old.base_ns.load(std::memory_order_relaxed) +
        static_cast<int64_t>(MulShift(old_hard, old.mult.load(std::memory_order_relaxed)));
    const uint64_t t0 = OrderedTsc();
    const uint64_t base = std::max(t0, old_base + old_hard);
    const int64_t base_ns = std::max(old_end, target(base));
    // Ahead of CLOCK_REALTIME: slew down so as to meet it at the period's end
    // (hold when that needs a negative slope).
    const double ahead = static_cast<double>(base_ns - target(base));
    Publish(base, base_ns, std::max(0.0, f - ahead / static_cast<double>(s.period_ticks)));
    s.recalibrations.fetch_add(1, std::memory_order_relaxed);
  }
#endif

  // Decides the mode and, for kTsc, calibrates and publishes the first line.
  ABSL_ATTRIBUTE_NOINLINE static void Initialize() {
    State& s = tsc_clock_state;
    while (!TryClaim()) {
      if (s.mode.load(std::memory_order_acquire) != ClockMode::kUninitialized) return;
      std::this_thread::yield();
    }
    if (s.mode.load(std::memory_order_relaxed) == ClockMode::kUninitialized) {
      bool tsc = false;
#if KINLET_HAVE_TSC
      switch (s.options.force) {
        case TscClockOptions::Force::kAuto: {
          const char* env = s.options.honor_env ? std::getenv("KINLET_CLOCK") : nullptr;
          tsc = (env == nullptr || std::strcmp(env, "realtime") != 0) && TscUsable();
          break;
        }
        case TscClockOptions::Force::kTsc:
          tsc = true;
          break;
        case TscClockOptions::Force::kRealtime:
          break;
      }
      if (tsc) {
        const Pair p0 = MeasurePair();
        const int64_t start = RealtimeNanos();
        while (RealtimeNanos() - start < kInitialSpanNs) {
        }
        const Pair p1 = MeasurePair();
        tsc = p1.tsc > p0.tsc && p1.ns > p0.ns;
        if (tsc) {
          s.ns_per_tick = static_cast<double>(p1.ns - p0.ns) / static_cast<double>(p1.tsc - p0.tsc);
          s.prev = p1;
          s.period_ticks = static_cast<uint64_t>(
              std::max<double>(1, static_cast<double>(s.options.period_ns) / s.ns_per_tick));
          s.grace_ticks = static_cast<uint64_t>(static_cast<double>(kGraceNs) / s.ns_per_tick);
          const uint64_t t0 = OrderedTsc();
          Publish(t0, p1.ns + std::llround(static_cast<double>(t0 - p1.tsc) * s.ns_per_tick),
                  s.ns_per_tick);
        }
      }
#endif
      s.mode.store(tsc ? ClockMode::kTsc : ClockMode::kRealtime, std::memory_order_release);
    }
    ReleaseClaim();
  }
};

}  // namespace kinlet::detail
