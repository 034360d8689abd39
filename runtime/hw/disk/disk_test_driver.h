// TestDriver: a minimal in-process driver for the emulated disk, programmed
// from the datasheet (disk_regs.h) alone. Tests and benchmarks play the driver
// with it; it is also the shortest worked example of the programming model.
//
//   TestDriver driver(disk->registers(), disk->dma(), res.doorbell_fd, res.interrupt_fd);
//   ASSERT_TRUE(driver.Enable(32));
//   driver.Submit(TestDriver::Io(Opcode::kWrite, /*tag=*/1, lba, 1, driver.DataOffset(0), 4096));
//   DiskCompletion done = *driver.WaitOne(kSecond);
//
// Layout of the DMA pool it uses: the SQ at 0, the CQ at kCqOffset, data
// buffers from kDataOffset on.
//
// Thread safety: one thread drives it, as one driver owns a queue pair.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "base/clock.h"
#include "base/spin.h"
#include "runtime/hw/disk/disk_regs.h"

namespace umbra::hw::disk {

class TestDriver {
 public:
  static constexpr uint64_t kSqOffset = 0;
  static constexpr uint64_t kCqOffset = kMaxQueueDepth * sizeof(DiskCommand);
  static constexpr uint64_t kDataOffset = kCqOffset + kMaxQueueDepth * sizeof(DiskCompletion);
  static constexpr int64_t kSecond = 1'000'000'000;

  TestDriver(DiskRegisters* regs, std::span<std::byte> dma, int doorbell_fd, int interrupt_fd)
      : regs_(regs), dma_(dma), doorbell_fd_(doorbell_fd), interrupt_fd_(interrupt_fd) {}

  static DiskCommand Io(Opcode op, uint16_t tag, uint64_t lba, uint32_t blocks, uint64_t offset, uint64_t length) {
    DiskCommand c{};
    c.opcode = static_cast<uint8_t>(op);
    c.tag = tag;
    c.lba = lba;
    c.num_blocks = blocks;
    c.buffer_offset = offset;
    c.buffer_length = length;
    c.user_data = 0x5EED0000u + tag;
    return c;
  }

  uint32_t depth() const { return depth_; }
  uint32_t block_size() const { return regs_->block_size.load(std::memory_order_acquire); }
  uint64_t DataOffset(uint64_t index) const { return kDataOffset + index * block_size(); }
  std::byte* Buffer(uint64_t offset) const { return dma_.data() + offset; }

  // Programs the queues and unmasks interrupts; waits for kStatusReady (true)
  // or kStatusConfigError / timeout (false).
  bool Enable(uint32_t depth, uint64_t sq = kSqOffset, uint64_t cq = kCqOffset) {
    depth_ = depth;
    sq_tail_ = cq_head_ = 0;
    regs_->control.store(0, std::memory_order_seq_cst);
    regs_->sq_offset.store(sq, std::memory_order_relaxed);
    regs_->cq_offset.store(cq, std::memory_order_relaxed);
    regs_->queue_depth.store(depth, std::memory_order_relaxed);
    regs_->sq_tail.store(0, std::memory_order_relaxed);
    regs_->cq_head.store(0, std::memory_order_relaxed);
    regs_->int_cause.store(0, std::memory_order_relaxed);
    regs_->int_mask.store(0, std::memory_order_release);
    // A disable and an enable in one poll would be seen as "no change": make
    // the device see the disable first.
    Ring();
    WaitStatus(0, kStatusReady | kStatusConfigError, kSecond);
    regs_->control.store(kControlEnable, std::memory_order_seq_cst);
    Ring();
    return WaitStatus(kStatusReady | kStatusConfigError, 0, kSecond) &&
           (regs_->status.load(std::memory_order_acquire) & kStatusReady) != 0;
  }

  // Waits until status has any bit of `any_set` (or, with any_set == 0, has
  // none of `all_clear`).
  bool WaitStatus(uint32_t any_set, uint32_t all_clear, int64_t timeout_ns) const {
    const int64_t deadline = MonotonicNanos() + timeout_ns;
    while (MonotonicNanos() < deadline) {
      const uint32_t s = regs_->status.load(std::memory_order_acquire);
      if (any_set != 0 ? (s & any_set) != 0 : (s & all_clear) == 0) return true;
      usleep(50);
    }
    return false;
  }

  // Queues one command (the caller keeps at most depth() outstanding) and
  // rings the doorbell if the device sleeps.
  void Submit(const DiskCommand& command, bool ring = true) {
    std::byte* slot = dma_.data() + regs_->sq_offset.load(std::memory_order_relaxed) +
                      (sq_tail_ & (depth_ - 1)) * sizeof(DiskCommand);
    std::memcpy(slot, &command, sizeof command);
    regs_->sq_tail.store(++sq_tail_, std::memory_order_seq_cst);
    if (ring) RingIfWanted();
  }

  void RingIfWanted() const {
    if (regs_->doorbell_wanted.load(std::memory_order_seq_cst) != 0) Ring();
  }
  void Ring() const {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(doorbell_fd_, &one, sizeof one);
  }

  // Consumes every posted completion into `out` (appending); returns how many.
  size_t Reap(std::vector<DiskCompletion>& out) {
    const uint32_t tail = regs_->cq_tail.load(std::memory_order_acquire);
    size_t n = 0;
    const std::byte* cq = dma_.data() + regs_->cq_offset.load(std::memory_order_relaxed);
    for (; cq_head_ != tail; ++cq_head_, ++n) {
      DiskCompletion c;
      std::memcpy(&c, cq + (cq_head_ & (depth_ - 1)) * sizeof(DiskCompletion), sizeof c);
      out.push_back(c);
    }
    if (n != 0) {
      regs_->cq_head.store(cq_head_, std::memory_order_seq_cst);
      RingIfWanted();
    }
    return n;
  }

  // Waits (spinning for `spin_ns`, then on the interrupt) until at least
  // `count` more completions were reaped into `out`. False on timeout.
  bool WaitFor(size_t count, std::vector<DiskCompletion>& out, int64_t timeout_ns, int64_t spin_ns = 20'000) {
    const int64_t start = MonotonicNanos();
    size_t got = 0;
    Spin spin(spin_ns);
    for (;;) {
      got += Reap(out);
      if (got >= count) return true;
      const int64_t waited = MonotonicNanos() - start;
      if (waited >= timeout_ns) return false;
      if (spin.Again()) continue;
      // About to sleep: acknowledge, then look once more. A completion posted
      // after that look finds the cause clear and signals. (While polling we
      // leave the cause set, so the device raises no interrupts we would not wait for.)
      regs_->int_cause.fetch_and(~kIntCompletion, std::memory_order_acq_rel);
      got += Reap(out);
      if (got >= count) return true;
      pollfd pfd{interrupt_fd_, POLLIN, 0};
      const int64_t left_ms = (timeout_ns - waited + 999'999) / 1'000'000;
      if (::poll(&pfd, 1, static_cast<int>(left_ms)) > 0) {
        uint64_t value;
        [[maybe_unused]] ssize_t n = ::read(interrupt_fd_, &value, sizeof value);
      }
    }
  }

  std::optional<DiskCompletion> WaitOne(int64_t timeout_ns) {
    std::vector<DiskCompletion> out;
    if (!WaitFor(1, out, timeout_ns)) return std::nullopt;
    return out.front();
  }

  // Submits one command and waits for its completion; returns its status.
  std::optional<Status> Run(const DiskCommand& command, int64_t timeout_ns = 5 * kSecond) {
    Submit(command);
    auto done = WaitOne(timeout_ns);
    if (!done) return std::nullopt;
    return static_cast<Status>(done->status);
  }

 private:
  DiskRegisters* regs_;
  std::span<std::byte> dma_;
  int doorbell_fd_;
  int interrupt_fd_;
  uint32_t depth_ = 0;
  uint32_t sq_tail_ = 0;
  uint32_t cq_head_ = 0;
};

}  // namespace umbra::hw::disk
