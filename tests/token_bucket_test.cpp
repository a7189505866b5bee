// Tests of kinlet/token_bucket.hpp: the rate limiter behind the per-shard
// limits. Time comes from a ManualClock (read as Unix milliseconds); nothing
// sleeps.
#include "kinlet/token_bucket.hpp"

#include <catch2/catch.hpp>
#include <cstdint>

#include "kinlet/clock.hpp"

namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

int64_t Now(const kinlet::ManualClock& clock) { return clock.NowMillis(); }

}  // namespace

TEST_CASE("TokenBucket starts full: exactly `burst` takes succeed, then the next fails",
          "[token_bucket]") {
  kinlet::ManualClock clock;
  SECTION("burst equal to the rate") {
    kinlet::TokenBucket bucket(/*rate_per_second=*/5, /*burst=*/5, Now(clock));
    CHECK(bucket.Available(Now(clock)) == 5);
    for (int i = 0; i < 5; ++i) CHECK(bucket.TryTake(1, Now(clock)));
    CHECK_FALSE(bucket.TryTake(1, Now(clock)));
    CHECK(bucket.Available(Now(clock)) == 0);
  }
  SECTION("burst smaller than the rate") {
    kinlet::TokenBucket bucket(/*rate_per_second=*/10, /*burst=*/3, Now(clock));
    CHECK(bucket.TryTake(1, Now(clock)));
    CHECK(bucket.TryTake(1, Now(clock)));
    CHECK(bucket.TryTake(1, Now(clock)));
    CHECK_FALSE(bucket.TryTake(1, Now(clock)));
  }
  SECTION("one take of the whole burst, never more than the burst") {
    kinlet::TokenBucket bucket(/*rate_per_second=*/1000, /*burst=*/1000, Now(clock));
    CHECK_FALSE(bucket.TryTake(1001, Now(clock)));
    CHECK(bucket.TryTake(1000, Now(clock)));
    CHECK_FALSE(bucket.TryTake(1, Now(clock)));
  }
  SECTION("a refused take takes nothing") {
    kinlet::TokenBucket bucket(/*rate_per_second=*/1000, /*burst=*/1000, Now(clock));
    REQUIRE(bucket.TryTake(999, Now(clock)));
    CHECK_FALSE(bucket.TryTake(2, Now(clock)));
    CHECK(bucket.Available(Now(clock)) == 1);
    CHECK(bucket.TryTake(1, Now(clock)));
  }
  SECTION("CanTake does not take") {
    kinlet::TokenBucket bucket(/*rate_per_second=*/2, /*burst=*/2, Now(clock));
    for (int i = 0; i < 10; ++i) CHECK(bucket.CanTake(2, Now(clock)));
    CHECK_FALSE(bucket.CanTake(3, Now(clock)));
    CHECK(bucket.Available(Now(clock)) == 2);
  }
}

TEST_CASE("TokenBucket refills continuously at its rate, up to the burst", "[token_bucket]") {
  kinlet::ManualClock clock;
  kinlet::TokenBucket bucket(/*rate_per_second=*/1000, /*burst=*/1000, Now(clock));
  REQUIRE(bucket.TryTake(1000, Now(clock)));
  REQUIRE_FALSE(bucket.TryTake(1, Now(clock)));

  SECTION("one token per millisecond") {
    clock.Advance(absl::Milliseconds(1));
    CHECK(bucket.Available(Now(clock)) == 1);
    CHECK(bucket.TryTake(1, Now(clock)));
    CHECK_FALSE(bucket.TryTake(1, Now(clock)));
    clock.Advance(absl::Milliseconds(250));
    CHECK(bucket.Available(Now(clock)) == 250);
  }
  SECTION("less than a millisecond adds nothing") {
    clock.Advance(absl::Microseconds(999));
    CHECK_FALSE(bucket.TryTake(1, Now(clock)));
  }
  SECTION("full after one second") {
    clock.Advance(absl::Milliseconds(999));
    CHECK_FALSE(bucket.TryTake(1000, Now(clock)));
    clock.Advance(absl::Milliseconds(1));
    CHECK(bucket.TryTake(1000, Now(clock)));
  }
  SECTION("never above the burst") {
    clock.Advance(absl::Seconds(5));
    CHECK(bucket.Available(Now(clock)) == 1000);
    CHECK_FALSE(bucket.TryTake(1001, Now(clock)));
    CHECK(bucket.TryTake(1000, Now(clock)));
    CHECK_FALSE(bucket.TryTake(1, Now(clock)));
  }
  SECTION("slow rates refill in exact milli-tokens") {
    kinlet::TokenBucket slow(/*rate_per_second=*/3, /*burst=*/3, Now(clock));
    REQUIRE(slow.TryTake(3, Now(clock)));
    clock.Advance(absl::Milliseconds(333));  // 999 milli-tokens
    CHECK_FALSE(slow.TryTake(1, Now(clock)));
    clock.Advance(absl::Milliseconds(1));  // 1002 milli-tokens
    CHECK(slow.TryTake(1, Now(clock)));
    CHECK_FALSE(slow.TryTake(1, Now(clock)));
  }
}

TEST_CASE("TokenBucket Charge draws the bucket into a debt repaid at the rate", "[token_bucket]") {
  kinlet::ManualClock clock;
  // 2 MiB/s with a 2 MiB burst: a 10 MiB read from full owes 8 MiB, about 4 s.
  kinlet::TokenBucket bucket(/*rate_per_second=*/2 * kMiB, /*burst=*/2 * kMiB, Now(clock));
  const int64_t t0 = Now(clock);
  REQUIRE(bucket.Positive(t0));
  bucket.Charge(10 * kMiB, t0);
  CHECK(bucket.Available(t0) == -8 * kMiB);
  CHECK_FALSE(bucket.Positive(t0));
  CHECK_FALSE(bucket.CanTake(1, t0));
  CHECK_FALSE(bucket.TryTake(1, t0));

  SECTION("still in debt at +3.9 s") {
    clock.Advance(absl::Milliseconds(3900));
    CHECK_FALSE(bucket.Positive(Now(clock)));
    CHECK(bucket.Available(Now(clock)) < 0);
  }
  SECTION("repaid after +4.1 s") {
    clock.Advance(absl::Milliseconds(4100));
    CHECK(bucket.Positive(Now(clock)));
    CHECK(bucket.Available(Now(clock)) > 0);
    CHECK(bucket.Available(Now(clock)) < 2 * kMiB);
  }
  SECTION("debt grows with further charges") {
    bucket.Charge(2 * kMiB, t0);
    clock.Advance(absl::Milliseconds(4100));
    CHECK_FALSE(bucket.Positive(Now(clock)));
    clock.Advance(absl::Milliseconds(1000));
    CHECK(bucket.Positive(Now(clock)));
  }
  SECTION("charging an unlimited bucket leaves it unlimited") {
    kinlet::TokenBucket unlimited(/*rate_per_second=*/0, /*burst=*/0, t0);
    unlimited.Charge(10 * kMiB, t0);
    CHECK(unlimited.Positive(t0));
    CHECK(unlimited.TryTake(1, t0));
  }
}

TEST_CASE("TokenBucket MillisUntil is the wait until n tokens are there", "[token_bucket]") {
  kinlet::ManualClock clock;
  kinlet::TokenBucket bucket(/*rate_per_second=*/1000, /*burst=*/1000, Now(clock));
  CHECK(bucket.MillisUntil(1000, Now(clock)) == 0);
  CHECK(bucket.MillisUntil(1, Now(clock)) == 0);
  REQUIRE(bucket.TryTake(1000, Now(clock)));
  CHECK(bucket.MillisUntil(0, Now(clock)) == 0);
  CHECK(bucket.MillisUntil(1, Now(clock)) == 1);
  CHECK(bucket.MillisUntil(500, Now(clock)) == 500);
  CHECK(bucket.MillisUntil(1000, Now(clock)) == 1000);

  SECTION("the wait it promises is exactly enough") {
    const int64_t wait = bucket.MillisUntil(300, Now(clock));
    clock.Advance(absl::Milliseconds(wait - 1));
    CHECK_FALSE(bucket.CanTake(300, Now(clock)));
    clock.Advance(absl::Milliseconds(1));
    CHECK(bucket.CanTake(300, Now(clock)));
    CHECK(bucket.MillisUntil(300, Now(clock)) == 0);
  }
  SECTION("rounds up to whole milliseconds") {
    kinlet::TokenBucket slow(/*rate_per_second=*/3, /*burst=*/3, Now(clock));
    REQUIRE(slow.TryTake(3, Now(clock)));
    CHECK(slow.MillisUntil(1, Now(clock)) == 334);  // ceil(1000 / 3)
    clock.Advance(absl::Milliseconds(334));
    CHECK(slow.TryTake(1, Now(clock)));
  }
  SECTION("includes the debt") {
    kinlet::TokenBucket read(/*rate_per_second=*/2 * kMiB, /*burst=*/2 * kMiB, Now(clock));
    read.Charge(10 * kMiB, Now(clock));
    // 8 MiB owed plus one token at 2 MiB/s: just over 4 s.
    CHECK(read.MillisUntil(1, Now(clock)) == 4001);
  }
  SECTION("unlimited buckets never wait") {
    kinlet::TokenBucket unlimited(/*rate_per_second=*/0, /*burst=*/0, Now(clock));
    CHECK(unlimited.MillisUntil(int64_t{1} << 40, Now(clock)) == 0);
  }
}

TEST_CASE("TokenBucket ignores time that runs backwards", "[token_bucket]") {
  kinlet::ManualClock clock;
  kinlet::TokenBucket bucket(/*rate_per_second=*/1000, /*burst=*/1000, Now(clock));
  const int64_t t0 = Now(clock);
  REQUIRE(bucket.TryTake(1000, t0));

  SECTION("an earlier time refills nothing") {
    CHECK(bucket.Available(t0 - 5000) == 0);
    CHECK_FALSE(bucket.TryTake(1, t0 - 5000));
    CHECK_FALSE(bucket.Positive(t0 - 1));
    CHECK(bucket.MillisUntil(1, t0 - 1) == 1);
  }
  SECTION("and does not disturb later refills") {
    CHECK(bucket.Available(t0 - 5000) == 0);
    // Refill counts from t0, not from the earlier time: 500 ms give 500.
    CHECK(bucket.Available(t0 + 500) == 500);
    CHECK(bucket.Available(t0 + 100) == 500);  // backwards again: unchanged
    CHECK(bucket.Available(t0 + 600) == 600);
  }
  SECTION("tokens already there can still be taken at an earlier time") {
    REQUIRE(bucket.Available(t0 + 10) == 10);
    CHECK(bucket.TryTake(10, t0 - 1000));
    CHECK_FALSE(bucket.TryTake(1, t0 - 1000));
    CHECK(bucket.Available(t0 + 20) == 10);
  }
}

TEST_CASE("TokenBucket with rate 0 is unlimited", "[token_bucket]") {
  kinlet::ManualClock clock;
  const int64_t t0 = Now(clock);
  kinlet::TokenBucket bucket(/*rate_per_second=*/0, /*burst=*/0, t0);
  CHECK(bucket.unlimited());
  CHECK(bucket.rate() == 0);
  for (int i = 0; i < 1000; ++i) REQUIRE(bucket.TryTake(int64_t{1} << 40, t0));
  CHECK(bucket.CanTake(int64_t{1} << 50, t0));
  CHECK(bucket.Positive(t0));
  CHECK(bucket.TryTake(1, t0 - 1000));  // even with time running backwards

  SECTION("a default-constructed bucket is unlimited too") {
    kinlet::TokenBucket none;
    CHECK(none.unlimited());
    CHECK(none.TryTake(1 << 30, t0));
    CHECK(none.MillisUntil(1 << 30, t0) == 0);
  }
  SECTION("a positive rate is not unlimited") {
    kinlet::TokenBucket limited(/*rate_per_second=*/1, /*burst=*/1, t0);
    CHECK_FALSE(limited.unlimited());
    CHECK(limited.rate() == 1);
  }
}

TEST_CASE("TokenBucket does not overflow after a very long idle time", "[token_bucket]") {
  kinlet::ManualClock clock;
  // 100 years in milliseconds times 10 GiB/s would overflow int64 if multiplied.
  constexpr int64_t kRate = int64_t{10} << 30;
  kinlet::TokenBucket bucket(kRate, kRate, Now(clock));
  REQUIRE(bucket.TryTake(kRate, Now(clock)));
  REQUIRE_FALSE(bucket.TryTake(1, Now(clock)));

  SECTION("from empty") {
    clock.Advance(absl::Hours(24 * 365 * 100));
    CHECK(bucket.Available(Now(clock)) == kRate);
    CHECK(bucket.TryTake(kRate, Now(clock)));
    CHECK_FALSE(bucket.TryTake(1, Now(clock)));
  }
  SECTION("from a debt") {
    bucket.Charge(kRate * 100, Now(clock));
    REQUIRE_FALSE(bucket.Positive(Now(clock)));
    clock.Advance(absl::Hours(24 * 365 * 100));
    CHECK(bucket.Positive(Now(clock)));
    CHECK(bucket.Available(Now(clock)) == kRate);
  }
  SECTION("a slow bucket too") {
    kinlet::TokenBucket slow(/*rate_per_second=*/1, /*burst=*/1, Now(clock));
    REQUIRE(slow.TryTake(1, Now(clock)));
    clock.Advance(absl::Hours(24 * 365 * 100));
    CHECK(slow.Available(Now(clock)) == 1);
    CHECK(slow.TryTake(1, Now(clock)));
    CHECK_FALSE(slow.TryTake(1, Now(clock)));
  }
}
