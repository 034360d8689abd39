// Nic: the e1000-like emulated network card ("umbra,e1000-emu").
//
// The device lives in the host and owns one shared region: the register
// window (NicRegisters, see nic_regs.h — the datasheet) and the DMA pool that
// holds the driver's descriptor rings and frame buffers. Its hardware thread
// waits on the doorbell, latches and validates the configuration registers,
// and sends TX descriptors into the backend; frames from the backend pass the
// receive filter and are DMA'd into the RX ring on the backend's thread.
//
//   auto [a, b] = UMBRA_TRY(WirePort::CreatePair());
//   auto nic = UMBRA_TRY(Nic::Create({.name = "nic0"}, std::move(a)));
//   auto peer = UMBRA_TRY(PeerEndpoint::Create(std::move(b)));
//   nic->Start();
//   SendResources(nic->resources());          // to the driver process
//   ...
//   nic->Reset();                             // the driver died: quiesce
//
// Thread safety: Start/Stop from the owning thread. Reset, SetLink, snapshot,
// stats and the other accessors may be called from any thread while the
// hardware thread and the backend's thread run. Reset and the hardware thread
// serialise on tx_mu_ then rx_mu_; frame delivery takes rx_mu_ only, so a NIC
// wired to another NIC never holds both NICs' locks in opposite orders.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/result.h"
#include "runtime/hw/device.h"
#include "runtime/hw/device_memory.h"
#include "runtime/hw/nic/backend.h"
#include "runtime/hw/nic/nic_regs.h"
#include "runtime/hw/nic/nic_snapshot.h"
#include "runtime/ipc/event_fd.h"
#include "runtime/ipc/shared_memory.h"

namespace umbra::hw::nic {

// Why the device refused something the driver wrote.
enum class NicFault {
  kControl,            // unknown bits in ctrl
  kMacAddress,         // multicast or zero station address
  kMtu,                // outside kNicMinMtu..kNicMaxMtu
  kRxControl,          // unknown bits in rx_ctrl
  kMulticastTable,     // count too large or a non-multicast entry
  kInterruptMask,      // unknown bits in int_mask_set / int_mask_clear
  kRingConfig,         // ring base/size outside the pool, misaligned, bad size
  kRingIndex,          // a tail index outside the ring
  kDescriptorBuffer,   // a descriptor's buffer outside the DMA pool
  kDescriptorCommand,  // unknown command bits or a missing EOP
  kDescriptorLength,   // a TX length above kNicMaxFrameSize
};

const char* NicFaultName(NicFault fault);

struct NicOptions {
  std::string name = "nic0";                // names the memfd; shows in /proc/<pid>/maps
  uint64_t permanent_mac = 0x010000000002;  // 02:00:00:00:00:01 (NicMacFromRegs layout)
  uint64_t dma_size = 4u << 20;             // bytes of DMA pool after the register page
  LinkState initial_link = LinkState::kUp;
  NicSpeed speed = NicSpeed::k10Gbps;
  // Called on the thread that found the fault (the hardware thread or the
  // backend's); must not call back into the Nic. Faults are rare: formatting
  // a message here is fine.
  std::function<void(NicFault fault, uint64_t value)> on_fault;
};

// The device's own copy of the statistics (what the register window shows,
// without the driver's scribbles).
struct NicStats {
  std::array<uint64_t, kNicStatCount> counters{};
  uint64_t operator[](NicStat s) const { return counters[s]; }
};

class Nic final : public Device, private FrameSink {
 public:
  static Result<std::unique_ptr<Nic>> Create(NicOptions options, std::unique_ptr<NicBackend> backend);
  ~Nic() override;
  Nic(const Nic&) = delete;
  Nic& operator=(const Nic&) = delete;

  // hw::Device
  std::string_view compatible() const override { return "umbra,e1000-emu"; }
  Resources resources() const override;
  void Start() override;
  void Stop() override;
  void Reset() override;
  uint64_t faults() const override { return faults_.load(std::memory_order_relaxed); }

  // The host's view of the register window (tests play the driver with it).
  NicRegisters& registers() const { return *regs_; }
  // The DMA pool as the host maps it.
  std::byte* dma() const { return mem_.region->data() + kNicRegisterWindowSize; }
  uint64_t dma_size() const { return options_.dma_size; }
  ipc::SharedMemory& region() const { return *mem_.region; }
  const ipc::EventFd& doorbell() const { return mem_.doorbell; }
  const ipc::EventFd& interrupt() const { return mem_.interrupt; }

  // The configuration the device is using (validated and latched).
  NicSnapshot snapshot() const;
  NicStats stats() const;
  LinkState link() const { return link_.load(std::memory_order_relaxed); }
  // Interrupt eventfd signals sent since creation (suppressed ones excluded).
  uint64_t interrupts_signalled() const { return irq_signals_.load(std::memory_order_relaxed); }

  // Plugs the cable in or pulls it out: updates status, raises kNicIntLinkChange.
  void SetLink(LinkState state);

  // One pass of the hardware thread's work on the caller's thread: apply a
  // pending doorbell, then send what the TX ring holds. For benchmarks that
  // measure the device's own cost and for single-threaded tests; call it only
  // while the hardware thread is stopped. Returns the TX descriptors handled.
  uint32_t RunOnce();

 private:
  // Everything the transmit side uses; guarded by tx_mu_.
  struct TxState {
    bool enabled = false;
    uint64_t ring_base = 0;
    uint32_t ring_size = 0;
    uint32_t head = 0;
    uint32_t mtu = kNicDefaultMtu;
    uint32_t last_bad_tail = UINT32_MAX;  // a bad tail is counted once, not per poll
  };
  // Everything the receive side uses; guarded by rx_mu_.
  struct RxState {
    bool enabled = false;
    uint64_t ring_base = 0;
    uint32_t ring_size = 0;
    uint32_t head = 0;
    uint32_t last_bad_tail = UINT32_MAX;
    uint64_t mac = 0;
    uint32_t mtu = kNicDefaultMtu;
    uint32_t rx_ctrl = 0;
    uint32_t mc_count = 0;
    std::array<uint64_t, kNicMulticastSlots> mc_table{};
  };

  Nic(NicOptions options, std::unique_ptr<NicBackend> backend, DeviceMemory mem, ipc::EventFd wake);

  // FrameSink (called by the backend).
  void DeliverFrames(std::span<const FrameView> frames) override;
  void LinkChanged(LinkState state) override { SetLink(state); }

  // The hardware thread.
  void Run();
  void WaitForWork();
  bool TxPending();
  // Applies what the driver wrote to the configuration registers.
  void HandleDoorbell();
  void LatchControl(uint32_t ctrl);
  void LatchTxRing();
  void LatchRxRing();
  void LatchAddressFilter();
  void LatchInterruptMask();
  // Sends up to one batch of TX descriptors; returns how many it handled.
  uint32_t ProcessTx();

  // Power-on values into every register and the internal state; callers hold
  // tx_mu_ and rx_mu_.
  void PowerOnLocked();
  void PublishStatus();
  void PublishStats(uint32_t first, uint32_t last);
  void AddStat(NicStat stat, uint64_t n);
  void Raise(uint32_t causes);
  void GiveWayToHost();
  void Fault(NicFault fault, uint64_t value);

  bool RxAccepts(const RxState& rx, FrameView frame) const;
  bool RangeInPool(uint64_t offset, uint64_t length) const;
  uint64_t ReadMac() const;

  const NicOptions options_;
  const std::unique_ptr<NicBackend> backend_;  // the cable; detached in ~Nic
  const DeviceMemory mem_;                     // registers + DMA, doorbell, interrupt; outlives drivers
  NicRegisters* const regs_;                   // in mem_.region
  std::byte* const dma_;                       // in mem_.region
  const ipc::EventFd wake_;                    // Stop() → hardware thread

  std::mutex tx_mu_;  // taken before rx_mu_
  TxState tx_;
  mutable std::mutex rx_mu_;
  RxState rx_;

  std::atomic<uint32_t> int_mask_{0};  // effective mask; written under both locks
  std::atomic<uint32_t> enables_{0};   // latched kNicCtrl{Tx,Rx}Enable; written under both locks
  std::atomic<LinkState> link_;
  std::atomic<uint64_t> faults_{0};
  std::atomic<uint64_t> irq_signals_{0};
  std::array<std::atomic<uint64_t>, kNicStatCount> stats_{};

  // Host calls (Reset) waiting for the locks. The hardware thread re-takes
  // tx_mu_ in a tight loop and std::mutex is not fair, so it steps aside
  // (GiveWayToHost, holding no lock) while this is non-zero.
  std::atomic<uint32_t> host_waiting_{0};

  std::atomic<bool> stopping_{false};
  std::thread thread_;  // the hardware thread; joined by Stop()
};

}  // namespace umbra::hw::nic
