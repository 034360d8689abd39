// hw::Device: an emulated piece of hardware living in the host.
//
// Like a real device, its state (registers, descriptor rings in DMA memory,
// internal state such as a MAC filter or a sample clock) outlives the driver
// that programs it: a crash can leave it half-programmed, and recovery must
// Reset() it and program it again. The driver sees only what Resources()
// names: a shared region holding the register window and the DMA pool, a
// doorbell it rings after writing registers or descriptors, and an interrupt
// eventfd the device signals.
//
// The device never trusts the driver: every register value and descriptor is
// copied out of shared memory and validated (ranges inside the DMA pool,
// lengths, indices) before use, as an IOMMU would. A bad one is counted as an
// error and reported through `faults()`, never a host crash.
//
// Thread safety: each device runs its own "hardware" thread (Start/Stop);
// Reset() and the accessors may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace umbra::hw {

// What a driver process is handed for one device (fds stay owned by the device).
struct Resources {
  int region_fd = -1;  // memfd: registers + DMA pool
  uint64_t region_size = 0;
  uint64_t registers_offset = 0;
  uint64_t registers_size = 0;
  uint64_t dma_offset = 0;
  uint64_t dma_size = 0;
  int doorbell_fd = -1;   // eventfd, driver → device
  int interrupt_fd = -1;  // eventfd, device → driver
};

class Device {
 public:
  virtual ~Device() = default;

  // The compatible string drivers match on, e.g. "umbra,e1000-emu".
  virtual std::string_view compatible() const = 0;
  virtual Resources resources() const = 0;

  // Starts and stops the hardware thread. Stop() is idempotent and joins.
  virtual void Start() = 0;
  virtual void Stop() = 0;

  // Quiesce: stop DMA, mask and clear interrupts, forget volatile state, bring
  // registers to power-on values. Called between a driver's death and the
  // next driver's probe.
  virtual void Reset() = 0;

  // Descriptors or register values the device refused since creation.
  virtual uint64_t faults() const = 0;

  // Makes host memory addressable by the device's DMA, as an IOMMU mapping
  // does: the host's data pool, so that a driver can point the device
  // straight at request payloads instead of copying them through the DMA
  // pool. An empty span takes the mapping back (before the memory goes).
  // A device that cannot use it ignores it; the driver learns from the
  // device's registers whether it may.
  virtual void MapHostMemory(std::span<std::byte>) {}
};

}  // namespace umbra::hw
