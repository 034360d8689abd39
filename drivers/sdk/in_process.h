// InProcessRunner: a Driver linked straight into the host, without isolation.
//
// The baseline every overhead figure is measured against, and a way to unit
// test a driver's logic without processes. Requests are handed to the driver
// by a direct call; completions are collected in a vector. There is no
// heartbeat, no fault containment and no recovery: a crash here is the host's.
//
//   InProcessRunner run(std::make_unique<EchoDriver>(), {.pool_bytes = 1 << 20});
//   UMBRA_TRY(run.Probe());
//   run.Submit(desc);  for (auto& c : run.TakeCompletions()) ...
//
// With an emulated device, set Options::hw_doorbell_fd / hw_interrupt_fd to
// its eventfds: RingDoorbell signals the device, and PollInterrupt() delivers
// a pending interrupt to the driver (the caller's thread plays the SDK loop).
//
//   if (run.PollInterrupt()) ...;   auto info = run.Call(method, body);
//
// Thread safety: single-threaded; Sleep and WaitInterrupt are not available
// (they return at once).
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "drivers/sdk/driver.h"

namespace umbra::sdk {

class InProcessRunner final : public Context {
 public:
  struct Options {
    size_t pool_bytes = 1 << 20;
    DeviceInfo device;
    HwView hw;
    int hw_doorbell_fd = -1;   // the device's doorbell eventfd (not owned), or -1
    int hw_interrupt_fd = -1;  // the device's interrupt eventfd (not owned), or -1
  };

  InProcessRunner(std::unique_ptr<Driver> driver, Options options);

  Result<void> Probe() { return driver_->Probe(*this); }
  // One request, a batch of its own.
  void Submit(const ipc::Descriptor& d) {
    driver_->OnRequest(*this, d);
    driver_->OnBatchEnd(*this);
  }
  // A batch, ended once as the SDK's process loop ends it.
  void Submit(std::span<const ipc::Descriptor> batch) {
    for (const ipc::Descriptor& d : batch) driver_->OnRequest(*this, d);
    driver_->OnBatchEnd(*this);
  }
  // Completions since the last call (the vector is reused: no allocation in steady state).
  std::vector<ipc::Descriptor>& completions() { return completions_; }
  Driver& driver() { return *driver_; }
  // Delivers the device's interrupt to the driver if it is pending; returns
  // whether it was. No system call when hw_interrupt_fd is -1.
  bool PollInterrupt();
  // Like PollInterrupt, but blocks the caller up to `timeout_ns` for the
  // interrupt (a driver waiting on its device without spinning).
  bool WaitForInterrupt(int64_t timeout_ns);
  // A control-path call, made directly.
  Result<std::string> Call(uint32_t method, std::string_view body) { return driver_->OnCall(*this, method, body); }

  // Context
  const DeviceInfo& device() const override { return options_.device; }
  std::byte* pool() const override { return pool_.get(); }
  uint64_t pool_size() const override { return options_.pool_bytes; }
  const HwView& hw() const override { return options_.hw; }
  void Complete(const ipc::Descriptor& request, int32_t status, uint32_t length, uint64_t arg) override;
  void RingDoorbell() override;
  void Log(LogLevel, std::string_view) override {}
  void Spawn(std::function<void()> fn) override { fn(); }
  void Sleep(int64_t) override {}
  bool WaitInterrupt(int64_t) override { return false; }

 private:
  std::unique_ptr<Driver> driver_;
  Options options_;
  std::unique_ptr<std::byte[]> pool_;
  std::vector<ipc::Descriptor> completions_;
};

}  // namespace umbra::sdk
