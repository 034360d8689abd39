#include "faultinject/bugs.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/clock.h"

namespace umbra::faultinject::bugs {
namespace {

// Linux's LIST_POISON1: what a pointer read from a deleted list entry holds.
constexpr uintptr_t kPoisonPointer = 0xdead000000000100;

std::atomic<uint64_t> g_leaked_bytes{0};

// Where leaked pointers go so the compiler cannot drop the allocation.
void* volatile g_leak_sink = nullptr;

// Out of line so the compiler cannot see (and warn about, or remove) the
// overflow it is asked to commit.
[[gnu::noinline]] void Scribble(void* p, size_t n) { std::memset(p, 0x41, n); }

// Stores through `address` as a buggy driver would. The empty asm hides the
// value from the optimizer: a store it can prove goes to null is UB that g++
// deletes or turns into a trap instruction (SIGILL), not what the bug does.
[[noreturn, gnu::noinline]] void StoreThrough(uintptr_t address) {
  asm volatile("" : "+r"(address));
  *reinterpret_cast<volatile int*>(address) = 1;
  std::abort();  // not reached
}

}  // namespace

void SegfaultNull() { StoreThrough(0); }

void SegfaultWild() { StoreThrough(kPoisonPointer); }

void Abort() { std::abort(); }

void Hang() {
  for (;;) CpuRelax();
}

void Deadlock() {
  static pthread_mutex_t mutex;
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_NORMAL);
  pthread_mutex_init(&mutex, &attr);
  pthread_mutexattr_destroy(&attr);
  pthread_mutex_lock(&mutex);
  pthread_mutex_lock(&mutex);  // a normal mutex relocked by its owner never returns
  std::abort();                // not reached
}

void Delay(int64_t ms) {
  if (ms <= 0) return;
  int64_t deadline = MonotonicNanos() + ms * 1'000'000;
  timespec ts{static_cast<time_t>(deadline / 1'000'000'000), static_cast<long>(deadline % 1'000'000'000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {}
}

void Exit(int code) { _exit(code); }

bool Leak(size_t bytes, size_t limit_bytes, AtLimit at_limit) {
  uint64_t total = g_leaked_bytes.load(std::memory_order_relaxed);
  do {
    if (total + bytes > limit_bytes) {
      if (at_limit == AtLimit::kAbort) std::abort();
      return false;
    }
  } while (!g_leaked_bytes.compare_exchange_weak(total, total + bytes, std::memory_order_relaxed));
  void* p = std::malloc(bytes);
  if (p == nullptr) std::abort();  // what an unchecked allocation failure leads to
  std::memset(p, 0x5a, bytes);
  g_leak_sink = p;
  return true;
}

uint64_t LeakedBytes() { return g_leaked_bytes.load(std::memory_order_relaxed); }

void DoubleFree() {
  void* volatile chunk = std::malloc(32);
  std::free(chunk);
  std::free(chunk);
  std::abort();  // not reached: glibc aborts in the second free()
}

void ClobberHeaderThenFree() {
  uint64_t* volatile array = static_cast<uint64_t*>(std::malloc(24));
  // array[-1]: the size field of the chunk's own header.
  size_t volatile length = sizeof(uint64_t);
  Scribble(array - 1, length);
  std::free(array);
  std::abort();  // not reached: glibc aborts on the clobbered header
}

}  // namespace umbra::faultinject::bugs
