// tests/test_env.hpp: knobs the long-running tests read from the environment
// (how many sequences, schedules or seconds; which seed).
#pragma once

#include <cstdint>
#include <cstdlib>

namespace kinlet_test {

// The unsigned value of environment variable `name`, or `fallback` if unset.
inline uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::strtoull(v, nullptr, 10) : fallback;
}

}  // namespace kinlet_test
