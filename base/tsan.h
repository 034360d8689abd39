// Telling ThreadSanitizer about ordering it cannot see.
//
// Some hand-offs between two threads of the host pass through a driver
// process: the client writes a payload into the data pool and submits it;
// the driver (another process) points the device at it; the device's thread
// reads it. Each step is ordered (release/acquire on shared-memory indices),
// but the middle one happens in a process TSan does not watch, so it would
// report the two host threads as racing. The two ends mark the hand-off on
// the same address instead. Nothing in other builds.
//
//   CrossProcessRelease(pool);   // the client, before it publishes the request
//   CrossProcessAcquire(pool);   // the device, after it took the command
#pragma once

namespace umbra {

#if defined(UMBRA_TSAN)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
inline void CrossProcessRelease(const void* addr) { __tsan_release(const_cast<void*>(addr)); }
inline void CrossProcessAcquire(const void* addr) { __tsan_acquire(const_cast<void*>(addr)); }
#else
inline void CrossProcessRelease(const void*) {}
inline void CrossProcessAcquire(const void*) {}
#endif

}  // namespace umbra
