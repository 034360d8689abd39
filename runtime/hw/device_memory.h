// hw::DeviceMemory: what every emulated device shares with its driver.
//
// One memfd region with the register window at offset 0 and the DMA pool at
// `dma_offset`, a doorbell eventfd the driver rings, and an interrupt eventfd
// the device raises; `resources()` names them for the driver process. The
// device owns it for its whole life, so every driver instance is handed the
// same memory.
//
//   DeviceMemory mem = UMBRA_TRY(DeviceMemory::Create("nic0-nic", kRegs, kRegs, dma_size));
//   auto* regs = mem.region->at<NicRegisters>(0);
//   mem.interrupt.Signal();
//
// Thread safety: immutable after Create; the eventfds are safe to signal and
// drain from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "runtime/hw/device.h"
#include "runtime/ipc/event_fd.h"
#include "runtime/ipc/shared_memory.h"

namespace umbra::hw {

struct DeviceMemory {
  std::unique_ptr<ipc::SharedMemory> region;  // registers + DMA pool
  ipc::EventFd doorbell;                      // driver → device
  ipc::EventFd interrupt;                     // device → driver
  uint64_t registers_size = 0;
  uint64_t dma_offset = 0;
  uint64_t dma_size = 0;

  static Result<DeviceMemory> Create(const std::string& name, uint64_t registers_size, uint64_t dma_offset,
                                     uint64_t dma_size) {
    DeviceMemory m;
    m.region = UMBRA_TRY(ipc::SharedMemory::Create(name, dma_offset + dma_size));
    m.doorbell = UMBRA_TRY(ipc::EventFd::Create());
    m.interrupt = UMBRA_TRY(ipc::EventFd::Create());
    m.registers_size = registers_size;
    m.dma_offset = dma_offset;
    m.dma_size = dma_size;
    return m;
  }

  std::byte* dma() const { return region->data() + dma_offset; }

  Resources resources() const {
    return Resources{.region_fd = region->fd(),
                     .region_size = region->size(),
                     .registers_offset = 0,
                     .registers_size = registers_size,
                     .dma_offset = dma_offset,
                     .dma_size = dma_size,
                     .doorbell_fd = doorbell.fd(),
                     .interrupt_fd = interrupt.fd()};
  }
};

}  // namespace umbra::hw
