// Waiting for the emulated device inside a driver's fiber: a register the
// device's thread changes once it has taken what the driver wrote (a reset
// done, a configuration acknowledged, a command taken).
//
//   UMBRA_TRY(sdk::AwaitDevice(ctx, [&] { return regs().ack.load() == seq; },
//                              kTimeoutNs, "the card did not acknowledge"));
//
// The device's thread answers within microseconds of the doorbell when it is
// polling and within tens when it must first be woken. The wait polls for up
// to kAwaitSpinNs (giving way as soon as a thread waits for a CPU:
// runtime/base/spin.h), then sleeps between looks (ctx.Sleep, which lets the
// driver's event loop run). Before, every wait slept at once, so a probe or a
// replayed setting paid at least a timer tick per commit.
//
// Thread safety: a driver's fiber (ctx.Sleep needs one).
#pragma once

#include <cstdint>

#include "drivers/sdk/driver.h"
#include "runtime/base/clock.h"
#include "runtime/base/result.h"
#include "runtime/base/spin.h"

namespace umbra::sdk {

inline constexpr int64_t kAwaitSpinNs = 200'000;
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
