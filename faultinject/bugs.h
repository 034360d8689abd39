// The bugs themselves: what a failpoint does when its action kills, hangs or
// slows the process. Each function behaves the way the real bug would, so the
// host sees the same symptom: a segfault is a real dereference (SIGSEGV from
// the MMU, not raise()), heap corruption is caught by glibc's own checks
// (SIGABRT from malloc_printerr), a deadlock blocks in the kernel on a futex.
//
//   bugs::SegfaultNull();  // never returns; the process dies by SIGSEGV
//
// These are called by FailpointRegistry::Hit(); they are public so a driver or
// a test can plant one bug directly.
//
// Thread safety: every function may be called from any thread. Leak() keeps a
// process-wide total in an atomic.
#pragma once

#include <cstddef>
#include <cstdint>

namespace umbra::faultinject::bugs {

// Stores through a null pointer: SIGSEGV at address 0.
[[noreturn]] void SegfaultNull();

// Stores through a poisoned pointer (Linux's LIST_POISON1, a non-canonical
// address, as a use-after-list_del would): SIGSEGV.
[[noreturn]] void SegfaultWild();

// abort(): a failed assertion, BUG_ON(). SIGABRT.
[[noreturn]] void Abort();

// Spins forever on the calling thread, burning a core (a poll loop whose
// condition never comes true). Only the watchdog ends it.
[[noreturn]] void Hang();

// Locks a non-recursive (PTHREAD_MUTEX_NORMAL) mutex twice on the calling
// thread: blocks forever in the kernel, using no CPU.
[[noreturn]] void Deadlock();

// Sleeps `ms` milliseconds (restarting after signals).
void Delay(int64_t ms);

// _exit(code): immediate, without destructors or atexit handlers — a process
// stopped in the middle of a handler may hold the locks they would take.
[[noreturn]] void Exit(int code);

// What Leak() does once the limit is reached.
enum class AtLimit {
  kStop,   // stop leaking: the process carries on, `limit` bytes heavier
  kAbort,  // abort(), as an uncaught std::bad_alloc would
};

// Allocates `bytes`, touches every page (so the resident set grows) and loses
// the pointer, unless the process-wide total would exceed `limit_bytes`; then
// does nothing (kStop) or aborts (kAbort). Returns whether it leaked.
bool Leak(size_t bytes, size_t limit_bytes, AtLimit at_limit);

// Bytes leaked by Leak() so far in this process.
uint64_t LeakedBytes();

// Frees the same chunk twice: glibc reports "double free detected" and aborts.
[[noreturn]] void DoubleFree();

// Writes 8 bytes just before a 24-byte allocation (an index of -1), which
// clobbers the size field of the chunk's header, then frees it: glibc finds
// the bad header ("double free or corruption (out)") and aborts.
[[noreturn]] void ClobberHeaderThenFree();

}  // namespace umbra::faultinject::bugs
