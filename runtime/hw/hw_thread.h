// What every emulated device copies otherwise: its "hardware" thread (start,
// stop, a wake-up eventfd, a name in top and gdb, an optional CPU, the CPU
// time it used) and the interrupt edge rule (signal the driver's interrupt
// eventfd only when a cause becomes pending that is enabled).
//
//   class MyDevice : public hw::Device {
//     void Start() override { thread_.Start(name_, [this] { Run(); }); }
//     void Stop() override { thread_.Stop(); }
//     void Run() {
//       while (!thread_.stopping()) { ...; poll({doorbell, thread_.wake()}); }
//     }
//     void Raise(uint32_t cause) {
//       if (hw::RaiseInterrupt(regs_->int_cause, regs_->int_mask, hw::MaskSense::kBitMasks, cause,
//                              mem_.interrupt)) ++interrupts_;
//     }
//     hw::HardwareThread thread_;
//   };
//
// Thread safety: Start and Stop from one controlling thread; stopping() and
// wake() from the hardware thread; RaiseInterrupt from any thread.
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "runtime/ipc/event_fd.h"

namespace umbra::hw {

class HardwareThread {
 public:
  // `wake`: an eventfd (ipc::EventFd::Create) Stop signals; the thread polls it.
  explicit HardwareThread(ipc::EventFd wake) : wake_(std::move(wake)) {}
  ~HardwareThread() { Stop(); }
  HardwareThread(const HardwareThread&) = delete;
  HardwareThread& operator=(const HardwareThread&) = delete;

  // Runs `run` on a new thread named "<name>-hw" (on CPU `cpu` if >= 0, a
  // hint). Nothing when already running. `run` returns once stopping().
  void Start(const std::string& name, std::function<void()> run, int cpu = -1);
  // Asks the thread to stop, wakes it and joins it. Idempotent.
  void Stop();

  bool running() const { return thread_.joinable(); }
  bool stopping() const { return stop_.load(std::memory_order_acquire); }
  // Signalled by Stop: poll it beside the doorbell, drain it after waking.
  const ipc::EventFd& wake() const { return wake_; }
  // CPU time the thread has used (ns; 0 when not running). Call it from the
  // thread that calls Start and Stop.
  int64_t cpu_ns() const;

 private:
  ipc::EventFd wake_;  // Stop() → the thread
  std::atomic<bool> stop_{false};
  std::thread thread_;                  // joined by Stop()
  std::optional<clockid_t> cpu_clock_;  // its CPU-time clock
};

// What a set bit of the device's interrupt mask register means.
enum class MaskSense {
  kBitMasks,    // a set bit masks the cause (int_mask)
  kBitEnables,  // a set bit enables the cause (int_enable)
};

// Sets `bits` in the cause register and signals `line` when one of them was
// not pending yet and is enabled: one edge per cause until the driver
// acknowledges it (clears the bit). Returns whether it signalled.
bool RaiseInterrupt(std::atomic<uint32_t>& cause, const std::atomic<uint32_t>& mask, MaskSense sense, uint32_t bits,
                    const ipc::EventFd& line);

}  // namespace umbra::hw
