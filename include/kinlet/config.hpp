// kinlet/config.hpp: build-wide macros shared by every kinlet header.
#pragma once

#include <cstdio>
#include <cstdlib>

// Cache-line size used for padding shared atomics apart. GCC 12 warns when
// std::hardware_destructive_interference_size is used in a header and clang 14
// lacks it, so the value is fixed here (x86-64 and most AArch64 parts use 64).
#ifndef KINLET_CACHE_LINE_SIZE
#define KINLET_CACHE_LINE_SIZE 64
#endif

// KINLET_ASSERT(cond, "msg"): checks a caller bug (a broken precondition, not bad
// input: bad input gets an absl::Status). Prints and aborts; never throws, so it
// works in translation units built with -fno-exceptions. Define KINLET_ASSERT
// before including kinlet to route it elsewhere.
#ifndef KINLET_ASSERT
#define KINLET_ASSERT(cond, msg)                                                                  \
  do {                                                                                            \
    if (!(cond)) {                                                                                \
      std::fprintf(stderr, "kinlet: %s:%d: assertion failed: %s (%s)\n", __FILE__, __LINE__, msg, \
                   #cond);                                                                        \
      std::abort();                                                                               \
    }                                                                                             \
  } while (0)
#endif

// KINLET_ATOMIC_COPY: 1 copies record bytes into and out of the ring with
// relaxed 8-byte atomics; 0 with memcpy. Readers copy optimistically and
// validate afterwards (a seqlock), so a copy may race with the writer reusing
// the bytes; the validation discards such a copy either way. Atomic copies
// make that race defined behaviour and visible to ThreadSanitizer; memcpy is
// faster for large records (the pattern of Linux's seqcount and of C++
// proposal P1478's atomic memcpy). Default: atomic under ThreadSanitizer,
// memcpy otherwise.
#ifndef KINLET_ATOMIC_COPY
#if defined(__SANITIZE_THREAD__)
#define KINLET_ATOMIC_COPY 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KINLET_ATOMIC_COPY 1
#endif
#endif
#endif
#ifndef KINLET_ATOMIC_COPY
#define KINLET_ATOMIC_COPY 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define KINLET_LIKELY(x) __builtin_expect(!!(x), 1)
#define KINLET_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define KINLET_LIKELY(x) (x)
#define KINLET_UNLIKELY(x) (x)
#endif
