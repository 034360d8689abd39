// Monotonic time in nanoseconds: the one clock the recorder, the watchdog and
// the benchmarks share.
#pragma once

#include <time.h>

#include <cstdint>

namespace umbra {

inline int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// A pause hint for bounded spin loops (never a bare sched_yield loop).
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace umbra
