// TestDriver: the tests play the NIC's driver with this, programming the
// device from the datasheet (nic_regs.h) alone, as the sample driver will.
//
// DMA pool layout it uses: TX ring at 0, RX ring after it, then one buffer
// of kBufferSize bytes per descriptor for TX and for RX.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "runtime/hw/nic/nic_regs.h"

namespace umbra::hw::nic::testing {

class TestDriver {
 public:
  static constexpr uint32_t kBufferSize = 9216;
  static constexpr uint32_t kAllInterrupts = kNicIntKnownBits;

  TestDriver(NicRegisters& regs, std::byte* dma, int doorbell_fd, int interrupt_fd, uint32_t ring_size = 64)
      : regs_(regs), dma_(dma), doorbell_fd_(doorbell_fd), interrupt_fd_(interrupt_fd), ring_size_(ring_size) {}

  uint64_t tx_ring_offset() const { return 0; }
  uint64_t rx_ring_offset() const { return uint64_t{ring_size_} * sizeof(NicDescriptor); }
  uint64_t tx_buffer(uint32_t i) const { return 2 * rx_ring_offset() + uint64_t{i} * kBufferSize; }
  uint64_t rx_buffer(uint32_t i) const { return tx_buffer(ring_size_) + uint64_t{i} * kBufferSize; }
  uint64_t dma_bytes_needed() const { return rx_buffer(ring_size_); }
  NicDescriptor* tx_ring() const { return reinterpret_cast<NicDescriptor*>(dma_ + tx_ring_offset()); }
  NicDescriptor* rx_ring() const { return reinterpret_cast<NicDescriptor*>(dma_ + rx_ring_offset()); }

  void Ring() const {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(doorbell_fd_, &one, sizeof one);
  }

  // Bumps config_seq, rings, and waits until the device acknowledges it.
  bool Commit() {
    const uint32_t seq = ++seq_;
    regs_.config_seq.store(seq, std::memory_order_release);
    Ring();
    return SpinUntil([&] { return regs_.config_ack.load(std::memory_order_acquire) == seq; });
  }

  // Software reset through ctrl, as a probe does.
  bool SoftwareReset() {
    regs_.ctrl.store(kNicCtrlReset, std::memory_order_release);
    Ring();
    const bool ok = SpinUntil([&] { return regs_.ctrl.load(std::memory_order_acquire) == 0; });
    seq_ = 0;
    tx_tail_ = tx_clean_ = rx_next_ = 0;
    return ok;
  }

  // Programs rings, filter and interrupts; gives every RX buffer but one to
  // the device; enables TX and RX.
  enum class Wait { kForAck, kNo };
  bool Open(uint32_t rx_ctrl = kNicRxUnicast | kNicRxBroadcast, uint32_t int_mask = kAllInterrupts,
            Wait wait = Wait::kForAck) {
    tx_tail_ = tx_clean_ = rx_next_ = 0;
    regs_.tx_ring_base.store(tx_ring_offset());
    regs_.tx_ring_size.store(ring_size_);
    regs_.tx_tail.store(0);
    regs_.rx_ring_base.store(rx_ring_offset());
    regs_.rx_ring_size.store(ring_size_);
    for (uint32_t i = 0; i < ring_size_; ++i) {
      tx_ring()[i].buffer.store(tx_buffer(i));
      tx_ring()[i].meta.store(0);
      rx_ring()[i].buffer.store(rx_buffer(i));
      rx_ring()[i].meta.store(NicDescMeta(kBufferSize, 0, 0));
    }
    regs_.rx_tail.store(ring_size_ - 1);
    regs_.rx_ctrl.store(rx_ctrl);
    regs_.int_mask_set.fetch_or(int_mask);
    regs_.ctrl.store(kNicCtrlTxEnable | kNicCtrlRxEnable);
    if (wait == Wait::kNo) {
      Ring();
      return true;
    }
    return Commit();
  }

  // Queues one frame; false when the ring is full.
  bool Transmit(const void* frame, uint32_t length) {
    const uint32_t next = (tx_tail_ + 1) % ring_size_;
    if (next == tx_clean_) return false;
    std::memcpy(dma_ + tx_buffer(tx_tail_), frame, length);
    tx_ring()[tx_tail_].buffer.store(tx_buffer(tx_tail_), std::memory_order_relaxed);
    tx_ring()[tx_tail_].meta.store(NicDescMeta(length, kNicDescCmdEop, 0), std::memory_order_relaxed);
    tx_tail_ = next;
    return true;
  }
  // Publishes queued frames and rings the doorbell if the device sleeps.
  void Flush() {
    regs_.tx_tail.store(tx_tail_, std::memory_order_seq_cst);
    if (regs_.device_idle.load(std::memory_order_seq_cst) != 0) Ring();
  }

  // Cleans completed TX descriptors; returns how many, and errors in `*errors`.
  uint32_t ReapTx(uint32_t* errors = nullptr) {
    uint32_t n = 0;
    while (tx_clean_ != tx_tail_) {
      const uint64_t meta = tx_ring()[tx_clean_].meta.load(std::memory_order_acquire);
      if ((NicDescStatus(meta) & kNicDescStatusDone) == 0) break;
      if (errors != nullptr && (NicDescStatus(meta) & kNicDescStatusError) != 0) ++*errors;
      tx_ring()[tx_clean_].meta.store(0, std::memory_order_relaxed);
      tx_clean_ = (tx_clean_ + 1) % ring_size_;
      ++n;
    }
    return n;
  }
  bool TxIdle() const { return tx_clean_ == tx_tail_; }

  // Takes the next received frame if there is one and recycles its buffer.
  std::optional<std::vector<std::byte>> PollRx() {
    NicDescriptor& d = rx_ring()[rx_next_];
    const uint64_t meta = d.meta.load(std::memory_order_acquire);
    if ((NicDescStatus(meta) & kNicDescStatusDone) == 0) return std::nullopt;
    const std::byte* p = dma_ + d.buffer.load(std::memory_order_relaxed);
    std::vector<std::byte> frame(p, p + NicDescLength(meta));
    if ((NicDescStatus(meta) & kNicDescStatusError) != 0) frame.clear();
    d.buffer.store(rx_buffer(rx_next_), std::memory_order_relaxed);
    d.meta.store(NicDescMeta(kBufferSize, 0, 0), std::memory_order_relaxed);
    regs_.rx_tail.store(rx_next_, std::memory_order_release);
    rx_next_ = (rx_next_ + 1) % ring_size_;
    return frame;
  }

  // Hands the next received frame to `fn(const std::byte*, uint32_t)` without
  // copying it, then recycles its buffer; false when none is ready.
  template <class Fn>
  bool PollRxWith(Fn&& fn) {
    NicDescriptor& d = rx_ring()[rx_next_];
    const uint64_t meta = d.meta.load(std::memory_order_acquire);
    if ((NicDescStatus(meta) & kNicDescStatusDone) == 0) return false;
    fn(dma_ + d.buffer.load(std::memory_order_relaxed), NicDescLength(meta));
    d.buffer.store(rx_buffer(rx_next_), std::memory_order_relaxed);
    d.meta.store(NicDescMeta(kBufferSize, 0, 0), std::memory_order_relaxed);
    regs_.rx_tail.store(rx_next_, std::memory_order_release);
    rx_next_ = (rx_next_ + 1) % ring_size_;
    return true;
  }

  // Waits for a received frame, sleeping on the interrupt eventfd.
  std::optional<std::vector<std::byte>> ReceiveOne(int timeout_ms = 2000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      if (auto f = PollRx()) return f;
      if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
      WaitInterrupt(10);
    }
  }

  // Waits up to timeout_ms for the interrupt eventfd; returns and acknowledges
  // the pending causes (0 on timeout).
  uint32_t WaitInterrupt(int timeout_ms) {
    pollfd pfd{interrupt_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) > 0) {
      uint64_t v;
      [[maybe_unused]] ssize_t n = ::read(interrupt_fd_, &v, sizeof v);
    }
    return regs_.int_cause.exchange(0, std::memory_order_acq_rel);
  }

  template <class Pred>
  static bool SpinUntil(Pred pred, int timeout_ms = 5000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    return true;
  }

 private:
  NicRegisters& regs_;
  std::byte* dma_;
  int doorbell_fd_;
  int interrupt_fd_;
  uint32_t ring_size_;
  uint32_t seq_ = 0;
  uint32_t tx_tail_ = 0;   // next descriptor to fill
  uint32_t tx_clean_ = 0;  // oldest descriptor not yet reaped
  uint32_t rx_next_ = 0;   // next descriptor the device fills
};

// A frame to `dst` from `src` with `ethertype` and `payload_size` bytes of
// payload filled with `fill`.
inline std::vector<std::byte> MakeFrame(uint64_t dst, uint64_t src, uint16_t ethertype, size_t payload_size,
                                        uint8_t fill = 0xAB) {
  std::vector<std::byte> f(kNicEthHeaderSize + payload_size, std::byte{fill});
  for (int i = 0; i < 6; ++i) {
    f[i] = std::byte(dst >> (8 * i));
    f[6 + i] = std::byte(src >> (8 * i));
  }
  f[12] = std::byte(ethertype >> 8);
  f[13] = std::byte(ethertype);
  return f;
}

}  // namespace umbra::hw::nic::testing
