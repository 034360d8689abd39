// Waiting for the emulated device inside a driver's fiber: a register the
// device's thread changes once it has taken what the driver wrote (a reset
// done, a configuration acknowledged, a command taken).
//
//   UMBRA_TRY(sdk::AwaitDevice(ctx, [&] { return regs().ack.load() == seq; },
//                              kTimeoutNs, "the card did not acknowledge"));
//
// The device's thread answers within microseconds of the doorbell when it is
// polling (its own idle spin is 30 µs) and within tens when it must first be
// woken. The wait polls for up to kAwaitSpinNs, then sleeps between looks
// (ctx.Sleep, which lets the driver's event loop run): an answer from a
// device still polling is seen at once instead of after a timer tick, and
// one that must be woken costs at most kAwaitSpinNs more. The budget is
// short because the spin cannot give way here: a sandboxed driver's /proc
// is mounted with subset=pid, so /proc/loadavg, which Spin reads to see
// that a thread waits for a CPU, is not there. (A 200 µs budget made every
// probe about 0.2 ms slower on a busy 2-vCPU machine: the driver held the
// CPU the device's thread was waiting for.)
//
// Thread safety: a driver's fiber (ctx.Sleep needs one).
#pragma once

#include <cstdint>

#include "drivers/sdk/driver.h"
#include "base/clock.h"
#include "base/result.h"
#include "base/spin.h"

namespace umbra::sdk {

inline constexpr int64_t kAwaitSpinNs = 30'000;
inline constexpr int64_t kAwaitSleepNs = 20'000;

// kTimeout with `what` when `done()` is still false after `timeout_ns`.
template <class Done>
Result<void> AwaitDevice(Context& ctx, Done done, int64_t timeout_ns, const char* what) {
  const int64_t deadline = MonotonicNanos() + timeout_ns;
  Spin spin(kAwaitSpinNs);
  while (!done()) {
    if (spin.Again()) continue;
    if (MonotonicNanos() > deadline) return Fail(Errc::kTimeout, what);
    ctx.Sleep(kAwaitSleepNs);
  }
  return {};
}

}  // namespace umbra::sdk
