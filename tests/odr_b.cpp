// The second translation unit of the ODR check (see odr_a.cpp).
#include <catch2/catch.hpp>

#include "kinlet/kinlet.hpp"

std::string OdrA();

TEST_CASE("Two translation units link against the same inline definitions", "[odr]") {
  CHECK(OdrA() == kinlet::ShardIdFor(1) + kinlet::HashKeyToString(1));
  CHECK(kinlet::ErrorName(kinlet::ErrorCode::kExpiredIterator) == "ExpiredIteratorException");
}
