// The driver SDK: what a driver is, and what it can use.
//
// A driver is a class with a lifecycle and request handlers, written the way a
// short kernel driver is. The SDK provides main(), the handshake with the host,
// the control and data channels, the heartbeat, fatal-signal reporting and
// fibers, so that driver code can block (sleep, wait for the device) without
// threads:
//
//   class EchoDriver : public umbra::sdk::Driver {
//    public:
//     std::string_view name() const override { return "echo"; }
//     Result<void> Probe(Context& ctx) override { ctx.Log(LogLevel::kInfo, "hello"); return {}; }
//     void OnRequest(Context& ctx, const ipc::Descriptor& req) override {
//       ctx.Complete(req, 0, req.length);           // echo the payload in place
//     }
//   };
//   UMBRA_DRIVER_MAIN(EchoDriver)
//
// Lifecycle: Probe (bring the device up; runs in a fiber) → requests, calls
// and interrupts → PrepareStop (stop taking work) → Stop (release the device).
// A driver that crashes is not told anything: the host kills its process and
// starts a new one, which probes a freshly reset device.
//
// The same Driver class can run inside the host without isolation (see
// InProcessRunner): that is the baseline every overhead figure is measured
// against.
//
// Thread safety: everything a driver sees runs on one thread (the SDK's event
// loop and its fibers); drivers need no locks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "runtime/ipc/descriptor.h"

namespace umbra::sdk {

enum class LogLevel { kTrace = 1, kDebug, kInfo, kWarn, kError };

struct DeviceInfo {
  std::string name;
  std::string compatible;
  std::string device_class;
  uint64_t instance = 0;
  std::map<std::string, std::string> settings;
};

// The emulated device's register window and DMA pool, if the device has one.
struct HwView {
  std::byte* registers = nullptr;
  uint64_t registers_size = 0;
  std::byte* dma = nullptr;
  uint64_t dma_size = 0;
};

// What a driver may use. Implemented by the SDK's process runtime and by the
// in-process runner.
class Context {
 public:
  virtual ~Context() = default;

  virtual const DeviceInfo& device() const = 0;
  // The data channel's buffer pool (payloads named by Descriptor offsets).
  virtual std::byte* pool() const = 0;
  virtual uint64_t pool_size() const = 0;
  virtual const HwView& hw() const = 0;

  // Completes a data-path request (now, or later from any fiber).
  virtual void Complete(const ipc::Descriptor& request, int32_t status, uint32_t length, uint64_t arg = 0) = 0;
  // Rings the emulated device's doorbell after programming it.
  virtual void RingDoorbell() = 0;

  virtual void Log(LogLevel level, std::string_view text) = 0;

  // Fibers: Spawn runs `fn` as a new fiber; Sleep and WaitInterrupt block the
  // calling fiber (only valid inside one: Probe, OnCall and spawned fibers).
  virtual void Spawn(std::function<void()> fn) = 0;
  virtual void Sleep(int64_t ns) = 0;
  // Returns true when an interrupt arrived, false on timeout.
  virtual bool WaitInterrupt(int64_t timeout_ns) = 0;

  // True when the payload range lies inside the pool.
  bool InPool(uint64_t offset, uint64_t length) const {
    return offset <= pool_size() && length <= pool_size() - offset;
  }
};

class Driver {
 public:
  virtual ~Driver() = default;

  virtual std::string_view name() const = 0;
  virtual std::string_view version() const { return "0.1"; }

  // Brings the device up. Runs in a fiber; may block. An error fails the probe.
  virtual Result<void> Probe(Context& ctx) = 0;
  // Stop taking new work; then release the device.
  virtual void PrepareStop(Context&) {}
  virtual void Stop(Context&) {}

  // One data-path request; complete it with ctx.Complete now or later.
  virtual void OnRequest(Context& ctx, const ipc::Descriptor& request) = 0;
  // Every request the host had queued has been handed to OnRequest. A driver
  // that defers telling its device about new work (a tail register, a
  // doorbell) does it here, once per batch instead of once per request.
  virtual void OnBatchEnd(Context&) {}
  // A control-path call (configuration, statistics). Runs in a fiber.
  virtual Result<std::string> OnCall(Context&, uint32_t method, std::string_view) {
    return Fail(Errc::kInvalidArgument, "method " + std::to_string(method) + " not supported");
  }
  // The emulated device raised its interrupt line.
  virtual void OnInterrupt(Context&) {}
  // Polled completions, as NAPI does: while the loop spins waiting for
  // requests it calls Poll every round, and a driver that supports it reaps
  // what its device finished straight from the device's memory, without the
  // interrupt's trip through the kernel. Returns true when it did any work.
  // Poll must leave the interrupt unacknowledged: a device does not raise a
  // cause that is still pending, so it stays quiet while the loop polls, and
  // OnInterrupt runs (acknowledges, reaps) once the loop goes back to sleep.
  // Once a driver's Poll has found work, the loop looks at its interrupt
  // line only between spins.
  virtual bool Poll(Context&) { return false; }
  // Counters the host may ask for (sent with heartbeats now and then).
  virtual std::map<std::string, uint64_t> Counters() const { return {}; }
};

// Runs a driver process: the handshake, then the event loop, until the host
// says stop (exit 0) or goes away.
int RunDriverProcess(int argc, char** argv, std::function<std::unique_ptr<Driver>()> factory);

}  // namespace umbra::sdk

#define UMBRA_DRIVER_MAIN(DriverClass)                                                                            \
  int main(int argc, char** argv) {                                                                               \
    return ::umbra::sdk::RunDriverProcess(argc, argv,                                                             \
                                          [] { return std::unique_ptr<::umbra::sdk::Driver>(new DriverClass); }); \
  }
