// The sample NIC driver for the emulated e1000-like card ("umbra,e1000-emu").
//
// Reads like a short kernel network driver, programmed from the datasheet
// (runtime/hw/nic/nic_regs.h) alone:
//   Probe      reset the device, check its magic, read the MAC, lay the TX and
//              RX rings and their buffers out in the DMA pool, enable interrupts.
//   Open/Stop  (kSetUp) turn the rings and the receiver on and off.
//   Transmit   (kTx) copy the frame from the host's pool buffer into a DMA
//              buffer and fill a TX descriptor; at the end of the batch
//              (OnBatchEnd) publish the tail once and ring the doorbell only
//              when the device sleeps. A full ring queues the request
//              (backpressure).
//   Receive    on the RX interrupt, copy frames into the pool buffers the host
//              posted (kRxPost) and complete those posts with the frame length.
//   Config     set MAC, MTU, receive mode, multicast list (kSet*), each
//              committed with the config_seq/config_ack handshake.
//   Link       link-change interrupts update the link state, reported by kGetInfo.
// The class protocol is protocols/net/net_protocol.h.
//
//   UMBRA_DRIVER_MAIN(umbra::drivers::NicDriver)       // drivers/nic/main.cc
//   // or in-process: InProcessRunner run(std::make_unique<NicDriver>(), {...});
//
// Failpoint sites (kNicSites): nic.probe, nic.open, nic.tx, nic.rx, nic.irq,
// nic.set_mac, nic.set_mtu, nic.set_rx_mode, nic.set_multicast, nic.info.
// Site-interpreted faults model real NIC driver bugs: kBadRegister programs a
// wrong register value, kWildDma points a descriptor outside the DMA pool,
// kError fails the operation, kDropCompletion loses a request or interrupt.
//
// Settings: "rx_expire_ms" (default 500; 0 = never) — how long a posted RX
// buffer is held before it is handed back empty.
//
// Thread safety: like every driver, single-threaded (the SDK's loop and fibers).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/sdk/driver.h"
#include "runtime/hw/nic/nic_regs.h"
#include "protocols/net/net_protocol.h"

namespace umbra::drivers {

inline constexpr std::string_view kNicSites[] = {
    "nic.probe",       "nic.open",          "nic.tx",   "nic.rx", "nic.irq", "nic.set_mac", "nic.set_mtu",
    "nic.set_rx_mode", "nic.set_multicast", "nic.info",
};

class NicDriver : public sdk::Driver {
 public:
  static constexpr uint32_t kBufferSize = 9216;  // holds kNicMaxFrameSize
  static constexpr uint32_t kMaxRing = 256;

  std::string_view name() const override { return "nic"; }
  std::string_view version() const override { return "1.0"; }

  Result<void> Probe(sdk::Context& ctx) override;
  void Stop(sdk::Context& ctx) override;
  void OnRequest(sdk::Context& ctx, const ipc::Descriptor& req) override;
  void OnBatchEnd(sdk::Context& ctx) override;
  Result<std::string> OnCall(sdk::Context& ctx, uint32_t method, std::string_view body) override;
  void OnInterrupt(sdk::Context& ctx) override;
  std::map<std::string, uint64_t> Counters() const override;

 private:
  // A fixed-capacity FIFO that grows only when full (rare): no allocation in
  // steady state.
  template <class T>
  class Fifo {
   public:
    bool empty() const { return count_ == 0; }
    size_t size() const { return count_; }
    T& front() { return items_[head_]; }
    void pop() {
      head_ = head_ + 1 == items_.size() ? 0 : head_ + 1;
      --count_;
    }
    void push(const T& v);

   private:
    std::vector<T> items_;
    size_t head_ = 0, count_ = 0;
  };
  struct RxPost {
    ipc::Descriptor request;
    int64_t posted_ns;
  };

  hw::nic::NicRegisters& regs() const { return *regs_; }
  hw::nic::NicDescriptor* tx_ring() const;
  hw::nic::NicDescriptor* rx_ring() const;
  uint64_t tx_buffer(uint32_t i) const { return buffers_base_ + uint64_t{i} * kBufferSize; }
  uint64_t rx_buffer(uint32_t i) const { return tx_buffer(ring_ + i); }

  Result<void> Commit(sdk::Context& ctx);
  Result<void> ResetDevice(sdk::Context& ctx);
  Result<void> Open(sdk::Context& ctx);
  Result<void> Close(sdk::Context& ctx);
  void ProgramRings();
  uint32_t RxControl() const;

  void Transmit(sdk::Context& ctx, const ipc::Descriptor& req);
  void PutTx(sdk::Context& ctx, const ipc::Descriptor& req);
  void FlushTx(sdk::Context& ctx);
  bool TxRingFull() const { return (tx_tail_ + 1) % ring_ == tx_clean_; }
  void ReapTx();
  void DrainTxBacklog(sdk::Context& ctx);
  void DeliverRx(sdk::Context& ctx);
  void ExpireRxPosts(sdk::Context& ctx);

  Result<std::string> SetMac(sdk::Context& ctx, std::string_view body);
  Result<std::string> SetMtu(sdk::Context& ctx, std::string_view body);
  Result<std::string> SetRxMode(sdk::Context& ctx, std::string_view body);
  Result<std::string> SetMulticast(sdk::Context& ctx, std::string_view body);
  Result<std::string> SetUp(sdk::Context& ctx, std::string_view body);
  Result<std::string> Info();

  hw::nic::NicRegisters* regs_ = nullptr;  // in the device region the SDK mapped
  std::byte* dma_ = nullptr;
  uint64_t dma_size_ = 0;
  uint32_t ring_ = 0;          // descriptors per ring
  uint64_t buffers_base_ = 0;  // DMA offset of the first frame buffer
  uint32_t seq_ = 0;           // last config_seq written
  int64_t rx_expire_ns_ = 500'000'000;

  // Configuration as programmed.
  uint64_t permanent_mac_ = 0;
  uint64_t mac_ = 0;
  uint32_t mtu_ = hw::nic::kNicDefaultMtu;
  uint32_t rx_mode_ = 0;
  uint32_t mc_count_ = 0;
  uint64_t mc_[hw::nic::kNicMulticastSlots] = {};
  bool up_ = false;
  bool link_up_ = false;

  uint32_t tx_tail_ = 0, tx_clean_ = 0, rx_next_ = 0;
  bool tx_unflushed_ = false;         // frames in the ring the device was not told of
  Fifo<ipc::Descriptor> tx_backlog_;  // TX requests waiting for ring space
  Fifo<RxPost> rx_posts_;             // host buffers waiting for frames

  uint64_t tx_frames_ = 0, tx_errors_ = 0, rx_frames_ = 0, rx_no_buffer_ = 0, link_changes_ = 0;
};

}  // namespace umbra::drivers
