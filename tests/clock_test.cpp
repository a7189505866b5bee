// Tests for kinlet/clock.hpp: the manual and system clocks and the ClockPolicy concept.
#include "kinlet/clock.hpp"

#include <catch2/catch.hpp>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace {

struct ConstNow {
  absl::Time Now() const { return absl::UnixEpoch(); }
};
struct MutableNow {  // Now() is not const: not a clock policy
  absl::Time Now() { return absl::UnixEpoch(); }
};
struct WrongType {  // Now() returns a number, not an absl::Time
  int64_t Now() const { return 0; }
};
struct NoNow {};

}  // namespace

static_assert(kinlet::ClockPolicy<kinlet::SystemClock>);
static_assert(kinlet::ClockPolicy<kinlet::RealtimeClock>);
static_assert(kinlet::ClockPolicy<kinlet::ManualClock>);
static_assert(kinlet::ClockPolicy<ConstNow>);
static_assert(!kinlet::ClockPolicy<MutableNow>);
static_assert(!kinlet::ClockPolicy<WrongType>);
static_assert(!kinlet::ClockPolicy<NoNow>);
static_assert(!kinlet::ClockPolicy<int>);

TEST_CASE("ManualClock starts at 2023-11-14T22:13:20Z by default", "[clock]") {
  const kinlet::ManualClock clock;
  CHECK(clock.Now() == absl::FromUnixSeconds(1700000000));
  CHECK(absl::FormatTime(absl::RFC3339_full, clock.Now(), absl::UTCTimeZone()) ==
        "2023-11-14T22:13:20+00:00");
  SECTION("and stays there until told") { CHECK(clock.Now() == clock.Now()); }
}

TEST_CASE("ManualClock starts at the time it is given", "[clock]") {
  const absl::Time start = absl::FromUnixMillis(1234567890123);
  const kinlet::ManualClock clock(start);
  CHECK(clock.Now() == start);
  const kinlet::ManualClock epoch(absl::UnixEpoch());
  CHECK(epoch.Now() == absl::UnixEpoch());
}

TEST_CASE("ManualClock moves only by Advance and Set", "[clock]") {
  const absl::Time start = absl::FromUnixSeconds(1700000000);
  kinlet::ManualClock clock;

  SECTION("Advance adds the duration") {
    clock.Advance(absl::Seconds(5));
    CHECK(clock.Now() == start + absl::Seconds(5));
    clock.Advance(absl::Milliseconds(250));
    CHECK(clock.Now() == start + absl::Milliseconds(5250));
  }
  SECTION("Advance keeps nanosecond precision") {
    clock.Advance(absl::Nanoseconds(1));
    CHECK(clock.Now() == start + absl::Nanoseconds(1));
    CHECK(clock.Now() != start);
  }
  SECTION("Advance by zero changes nothing") {
    clock.Advance(absl::ZeroDuration());
    CHECK(clock.Now() == start);
  }
  SECTION("Advance by a negative duration goes back") {
    clock.Advance(absl::Hours(-1));
    CHECK(clock.Now() == start - absl::Hours(1));
  }
  SECTION("Advance over long spans (a year of retention)") {
    clock.Advance(absl::Hours(24 * 365));
    CHECK(clock.Now() == start + absl::Hours(8760));
  }
  SECTION("Set jumps to the given time, forward or back") {
    const absl::Time later = start + absl::Hours(3);
    clock.Set(later);
    CHECK(clock.Now() == later);
    const absl::Time earlier = start - absl::Minutes(10);
    clock.Set(earlier);
    CHECK(clock.Now() == earlier);
    clock.Advance(absl::Minutes(10));
    CHECK(clock.Now() == start);
  }
}

TEST_CASE("ManualClock has no default instance", "[clock]") {
  CHECK(kinlet::ManualClock::Default() == nullptr);
}

TEST_CASE("SystemClock::Default is one shared instance reading wall time", "[clock]") {
  kinlet::SystemClock* clock = kinlet::SystemClock::Default();
  REQUIRE(clock != nullptr);
  CHECK(kinlet::SystemClock::Default() == clock);
  const absl::Time before = absl::Now();
  const absl::Time now = clock->Now();
  const absl::Time after = absl::Now();
  CHECK(now >= before - absl::Minutes(1));
  CHECK(now <= after + absl::Minutes(1));
  CHECK(absl::AbsDuration(now - absl::Now()) < absl::Minutes(1));
  // Wall time is past the ManualClock's fixed 2023 start.
  CHECK(now > absl::FromUnixSeconds(1700000000));
}
