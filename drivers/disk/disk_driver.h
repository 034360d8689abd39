// The sample disk driver: a short driver for the emulated disk
// (runtime/hw/disk/disk_regs.h), speaking the block class protocol
// (protocols/block/block_protocol.h).
//
// Lifecycle: Probe checks the datasheet identity, lays the submission queue,
// the completion queue and one bounce buffer per tag out in the DMA pool,
// enables the queues, unmasks interrupts and identifies the disk with a real
// kIdentify command (capacity, block size, whether the write cache is on).
// Requests wait in a FIFO and go to the device's tagged queue as tags free up
// (at most `queue_depth` outstanding), so the device executes them in the
// order the host sent them — the order the block shadow's flush barriers rely
// on. Completions are reaped on the interrupt.
//
// Payloads stay where the host put them: when the host has mapped its data
// pool for the device's DMA (the host_memory_size register), commands point
// the device straight at each request's buffer (kCommandHostMemory). Without
// that mapping, or with the setting payloads=bounce, they are copied once
// each way through the tag's bounce buffer in the DMA pool
// (docs/block.md, "Payloads in place").
//
//   sdk::InProcessRunner run(std::make_unique<DiskDriver>(), {.hw = view, ...});
//   UMBRA_TRY(run.Probe());
//
// Failpoints (docs/fault-injection.md): disk.probe, disk.submit,
// disk.complete, disk.irq, disk.flush, disk.set_cache — see kDiskSites and
// the .cc for what each site-interpreted action does.
//
// Settings: "queue_depth" (default 32): the hardware queue depth programmed at
// probe, a power of two the device accepts; kSetQueueDepth may lower the
// number of commands kept outstanding below it. "payloads": "in-place"
// (default: when the device can reach the data pool) or "bounce".
//
// Thread safety: single-threaded, as every driver (the SDK's loop and fibers).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/sdk/driver.h"
#include "runtime/hw/disk/disk_regs.h"
#include "protocols/block/block_protocol.h"

namespace umbra::drivers::disk {

inline constexpr std::string_view kDiskSites[] = {"disk.probe", "disk.submit", "disk.complete",
                                                  "disk.irq",   "disk.flush",  "disk.set_cache"};

class DiskDriver : public sdk::Driver {
 public:
  std::string_view name() const override { return "disk"; }
  std::string_view version() const override { return "1.0"; }

  Result<void> Probe(sdk::Context& ctx) override;
  void Stop(sdk::Context& ctx) override;
  void OnRequest(sdk::Context& ctx, const ipc::Descriptor& req) override;
  Result<std::string> OnCall(sdk::Context& ctx, uint32_t method, std::string_view body) override;
  void OnInterrupt(sdk::Context& ctx) override;
  bool Poll(sdk::Context& ctx) override;
  std::map<std::string, uint64_t> Counters() const override;

  const block::Geometry& geometry() const { return geometry_; }

 private:
  struct Tag {
    ipc::Descriptor request{};
    bool busy = false;
    bool in_place = false;  // the device reads/writes the payload in the data pool
  };

  Result<void> EnableQueues(sdk::Context& ctx);
  Result<void> Identify(sdk::Context& ctx);
  Result<void> SetWriteCache(sdk::Context& ctx, bool on);
  // Moves waiting requests into the device's queue while tags are free.
  void Kick(sdk::Context& ctx);
  void Issue(uint16_t tag, const ipc::Descriptor& req, bool in_place);
  // Consumes every posted completion; returns how many.
  size_t Reap(sdk::Context& ctx);
  void Finish(sdk::Context& ctx, const hw::disk::DiskCompletion& c);
  void Fail(sdk::Context& ctx, const ipc::Descriptor& req, Errc code);
  std::byte* Bounce(uint16_t tag) const { return dma_ + data_offset_ + uint64_t{tag} * slot_bytes_; }

  hw::disk::DiskRegisters* regs_ = nullptr;  // the device's register window (mapped by the SDK)
  std::byte* dma_ = nullptr;                 // the device's DMA pool
  uint64_t dma_size_ = 0;
  uint32_t hw_depth_ = 32;    // entries in the SQ and CQ
  uint32_t soft_depth_ = 32;  // commands kept outstanding (kSetQueueDepth)
  uint64_t cq_offset_ = 0;
  uint64_t data_offset_ = 0;
  uint64_t slot_bytes_ = 0;  // bounce buffer per tag
  bool in_place_ = false;    // the device can reach the data pool: no bounce copies
  uint32_t sq_tail_ = 0;     // our copy of what we published
  uint32_t cq_head_ = 0;
  uint32_t outstanding_ = 0;
  block::Geometry geometry_;
  std::vector<Tag> tags_;
  std::vector<uint16_t> free_tags_;
  std::deque<ipc::Descriptor> waiting_;  // accepted, not yet in the SQ, in arrival order
  uint64_t commands_ = 0, interrupts_ = 0, polls_ = 0, errors_ = 0;
};

}  // namespace umbra::drivers::disk
