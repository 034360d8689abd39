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
// Thread safety: single-threaded; Sleep and WaitInterrupt are not available
// (they return at once).
#pragma once

#include <memory>
#include <vector>

#include "drivers/sdk/driver.h"

namespace umbra::sdk {

class InProcessRunner final : public Context {
 public:
  struct Options {
    size_t pool_bytes = 1 << 20;
    DeviceInfo device;
    HwView hw;
  };

  InProcessRunner(std::unique_ptr<Driver> driver, Options options);

  Result<void> Probe() { return driver_->Probe(*this); }
  void Submit(const ipc::Descriptor& d) { driver_->OnRequest(*this, d); }
  // Completions since the last call (the vector is reused: no allocation in steady state).
  std::vector<ipc::Descriptor>& completions() { return completions_; }
  Driver& driver() { return *driver_; }

  // Context
  const DeviceInfo& device() const override { return options_.device; }
  std::byte* pool() const override { return pool_.get(); }
  uint64_t pool_size() const override { return options_.pool_bytes; }
  const HwView& hw() const override { return options_.hw; }
  void Complete(const ipc::Descriptor& request, int32_t status, uint32_t length,
                uint64_t arg) override;
  void RingDoorbell() override {}
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
