#include "runtime/hw/nic/nic.h"

#include <poll.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include "base/clock.h"
#include "base/spin.h"

namespace umbra::hw::nic {
namespace {

// How long the hardware thread polls the rings after its last work before it
// sleeps in poll(): long enough to catch a driver's next batch, short enough
// that an idle device costs nothing. It polls only while no other thread
// waits for a CPU (Spin).
constexpr int64_t kSpinNs = 30'000;
// While polling, how often the doorbell eventfd is drained (one read(2)).
constexpr int64_t kDoorbellCheckNs = 20'000;
// Descriptors handled per lock hold and per backend call.
constexpr uint32_t kTxBatch = 64;
constexpr uint64_t kBroadcastMac = 0xFFFF'FFFF'FFFF;
constexpr uint64_t kMaxDmaSize = uint64_t{1} << 30;

uint64_t DestinationMac(FrameView frame) {
  uint64_t mac = 0;
  for (int i = 5; i >= 0; --i) mac = (mac << 8) | std::to_integer<uint64_t>(frame[i]);
  return mac;
}

uint64_t WithStatus(uint64_t meta, uint8_t status) {
  return (meta & ~(uint64_t{0xFF} << 24)) | (uint64_t{status} << 24);
}

}  // namespace

const char* NicFaultName(NicFault fault) {
  switch (fault) {
    case NicFault::kControl: return "control";
    case NicFault::kMacAddress: return "mac-address";
    case NicFault::kMtu: return "mtu";
    case NicFault::kRxControl: return "rx-control";
    case NicFault::kMulticastTable: return "multicast-table";
    case NicFault::kInterruptMask: return "interrupt-mask";
    case NicFault::kRingConfig: return "ring-config";
    case NicFault::kRingIndex: return "ring-index";
    case NicFault::kDescriptorBuffer: return "descriptor-buffer";
    case NicFault::kDescriptorCommand: return "descriptor-command";
    case NicFault::kDescriptorLength: return "descriptor-length";
  }
  return "unknown";
}

Result<std::unique_ptr<Nic>> Nic::Create(NicOptions options, std::unique_ptr<NicBackend> backend) {
  if (!backend) return Fail(Errc::kInvalidArgument, "nic " + options.name + ": no backend");
  const uint64_t mac = options.permanent_mac;
  if (mac == 0 || (mac >> 48) != 0 || NicMacIsMulticast(mac)) {
    return Fail(Errc::kInvalidArgument, "nic " + options.name + ": permanent MAC must be a unicast 48-bit address");
  }
  if (options.dma_size == 0 || options.dma_size > kMaxDmaSize) {
    return Fail(Errc::kInvalidArgument, "nic " + options.name + ": DMA pool must be 1 B..1 GiB");
  }
  options.dma_size = (options.dma_size + kNicRegisterWindowSize - 1) / kNicRegisterWindowSize * kNicRegisterWindowSize;
  auto mem = UMBRA_TRY(
      DeviceMemory::Create(options.name + "-nic", kNicRegisterWindowSize, kNicRegisterWindowSize, options.dma_size));
  auto wake = UMBRA_TRY(ipc::EventFd::Create());
  new (mem.region->data()) NicRegisters();
  std::unique_ptr<Nic> nic(new Nic(std::move(options), std::move(backend), std::move(mem), std::move(wake)));
  {
    std::lock_guard tx_lock(nic->tx_mu_);
    std::lock_guard rx_lock(nic->rx_mu_);
    nic->PowerOnLocked();
  }
  nic->backend_->Attach(nic.get());
  return nic;
}

Nic::Nic(NicOptions options, std::unique_ptr<NicBackend> backend, DeviceMemory mem, ipc::EventFd wake)
    : options_(std::move(options)), backend_(std::move(backend)), mem_(std::move(mem)),
      regs_(mem_.region->at<NicRegisters>(0)), dma_(mem_.region->data() + kNicRegisterWindowSize),
      wake_(std::move(wake)), link_(options_.initial_link) {}

Nic::~Nic() {
  Stop();
  backend_->Attach(nullptr);
}

Resources Nic::resources() const { return mem_.resources(); }

void Nic::Start() {
  if (thread_.joinable()) return;
  stopping_.store(false, std::memory_order_relaxed);
  thread_ = std::thread([this] { Run(); });
}

void Nic::Stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true, std::memory_order_release);
  wake_.Signal();
  thread_.join();
  wake_.Drain();
}

void Nic::Reset() {
  host_waiting_.fetch_add(1, std::memory_order_acq_rel);
  {
    std::lock_guard tx_lock(tx_mu_);
    std::lock_guard rx_lock(rx_mu_);
    PowerOnLocked();
  }
  host_waiting_.fetch_sub(1, std::memory_order_acq_rel);
  host_waiting_.notify_all();
}

// Blocks (futex, no spinning) while a host call waits for the locks; one
// atomic load when none does.
void Nic::GiveWayToHost() {
  uint32_t waiting;
  while ((waiting = host_waiting_.load(std::memory_order_acquire)) != 0) {
    host_waiting_.wait(waiting, std::memory_order_acquire);
  }
}

NicSnapshot Nic::snapshot() const {
  std::lock_guard lock(rx_mu_);
  NicSnapshot s;
  s.mac = rx_.mac;
  s.mtu = rx_.mtu;
  s.rx_ctrl = rx_.rx_ctrl;
  s.mc_count = rx_.mc_count;
  s.mc_table = rx_.mc_table;
  s.int_mask = int_mask_.load(std::memory_order_relaxed);
  s.ctrl_enables = enables_.load(std::memory_order_relaxed);
  return s;
}

NicStats Nic::stats() const {
  NicStats s;
  for (uint32_t i = 0; i < kNicStatCount; ++i) s.counters[i] = stats_[i].load(std::memory_order_relaxed);
  return s;
}

void Nic::SetLink(LinkState state) {
  std::lock_guard lock(rx_mu_);
  if (link_.exchange(state, std::memory_order_relaxed) == state) return;
  PublishStatus();
  Raise(kNicIntLinkChange);
}

uint32_t Nic::RunOnce() {
  if (mem_.doorbell.Drain() > 0) HandleDoorbell();
  std::lock_guard lock(tx_mu_);
  uint32_t total = 0;
  while (uint32_t n = ProcessTx()) total += n;
  return total;
}

// ---------------------------------------------------------------------------
// The hardware thread.

void Nic::Run() {
  Spin idle(kSpinNs);
  int64_t last_doorbell_check = 0;
  while (!stopping_.load(std::memory_order_acquire)) {
    int64_t now = MonotonicNanos();
    if (now - last_doorbell_check >= kDoorbellCheckNs) {
      last_doorbell_check = now;
      if (mem_.doorbell.Drain() > 0) HandleDoorbell();
    }
    GiveWayToHost();
    bool worked;
    {
      std::lock_guard lock(tx_mu_);
      worked = ProcessTx() > 0;
    }
    if (worked) {
      idle.Reset();
      continue;
    }
    if (idle.Again()) continue;
    WaitForWork();
    idle.Reset();
    last_doorbell_check = 0;
  }
}

// Sleeps until the doorbell or Stop(). device_idle tells the driver to ring:
// it is set before the last look at the TX tail (seq_cst on both sides), so a
// tail written after that look sees device_idle == 1 and rings.
void Nic::WaitForWork() {
  regs_->device_idle.store(1, std::memory_order_seq_cst);
  if (TxPending()) {
    regs_->device_idle.store(0, std::memory_order_relaxed);
    return;
  }
  pollfd fds[2] = {{mem_.doorbell.fd(), POLLIN, 0}, {wake_.fd(), POLLIN, 0}};
  while (::poll(fds, 2, -1) < 0 && errno == EINTR) {}
  regs_->device_idle.store(0, std::memory_order_relaxed);
}

bool Nic::TxPending() {
  std::lock_guard lock(tx_mu_);
  if (!tx_.enabled) return false;
  uint32_t tail = regs_->tx_tail.load(std::memory_order_seq_cst);
  return tail < tx_.ring_size && tail != tx_.head;
}

void Nic::HandleDoorbell() {
  std::lock_guard tx_lock(tx_mu_);
  std::lock_guard rx_lock(rx_mu_);
  const uint32_t seq = regs_->config_seq.load(std::memory_order_acquire);
  const uint32_t ctrl = regs_->ctrl.load(std::memory_order_acquire);
  if ((ctrl & kNicCtrlReset) != 0) {
    PowerOnLocked();
    return;
  }
  LatchInterruptMask();
  LatchAddressFilter();
  LatchControl(ctrl);
  PublishStatus();
  regs_->config_ack.store(seq, std::memory_order_release);
}

void Nic::LatchControl(uint32_t ctrl) {
  if ((ctrl & ~kNicCtrlKnownBits) != 0) {
    Fault(NicFault::kControl, ctrl);
    regs_->ctrl.store(enables_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    return;
  }
  const bool want_tx = (ctrl & kNicCtrlTxEnable) != 0;
  const bool want_rx = (ctrl & kNicCtrlRxEnable) != 0;
  if (want_tx && !tx_.enabled) LatchTxRing();
  if (!want_tx) tx_.enabled = false;
  if (want_rx && !rx_.enabled) LatchRxRing();
  if (!want_rx) rx_.enabled = false;
  const uint32_t enables = (tx_.enabled ? kNicCtrlTxEnable : 0u) | (rx_.enabled ? kNicCtrlRxEnable : 0u);
  enables_.store(enables, std::memory_order_relaxed);
  // A refused enable reads back as 0, like a bit the hardware did not take.
  if (enables != ctrl) regs_->ctrl.store(enables, std::memory_order_relaxed);
}

namespace {

bool RingFits(uint64_t base, uint32_t size, uint64_t pool) {
  if (size < 2 || size > kNicMaxRingSize) return false;
  if (base % kNicDescriptorAlign != 0 || base > pool) return false;
  return uint64_t{size} * sizeof(NicDescriptor) <= pool - base;
}

}  // namespace

void Nic::LatchTxRing() {
  const uint64_t base = regs_->tx_ring_base.load(std::memory_order_relaxed);
  const uint32_t size = regs_->tx_ring_size.load(std::memory_order_relaxed);
  if (!RingFits(base, size, options_.dma_size)) {
    Fault(NicFault::kRingConfig, base);
    return;
  }
  tx_.enabled = true;
  tx_.ring_base = base;
  tx_.ring_size = size;
  tx_.head = 0;
  tx_.last_bad_tail = UINT32_MAX;
  regs_->tx_head.store(0, std::memory_order_release);
}

void Nic::LatchRxRing() {
  const uint64_t base = regs_->rx_ring_base.load(std::memory_order_relaxed);
  const uint32_t size = regs_->rx_ring_size.load(std::memory_order_relaxed);
  if (!RingFits(base, size, options_.dma_size)) {
    Fault(NicFault::kRingConfig, base);
    return;
  }
  rx_.enabled = true;
  rx_.ring_base = base;
  rx_.ring_size = size;
  rx_.head = 0;
  rx_.last_bad_tail = UINT32_MAX;
  regs_->rx_head.store(0, std::memory_order_release);
}

void Nic::LatchAddressFilter() {
  const uint64_t mac = ReadMac();
  if (mac == 0 || NicMacIsMulticast(mac)) {
    Fault(NicFault::kMacAddress, mac);
    regs_->mac_lo.store(NicMacLo(rx_.mac), std::memory_order_relaxed);
    regs_->mac_hi.store(NicMacHi(rx_.mac), std::memory_order_relaxed);
  } else {
    rx_.mac = mac;
  }

  const uint32_t mtu = regs_->mtu.load(std::memory_order_relaxed);
  if (mtu < kNicMinMtu || mtu > kNicMaxMtu) {
    Fault(NicFault::kMtu, mtu);
    regs_->mtu.store(rx_.mtu, std::memory_order_relaxed);
  } else {
    rx_.mtu = mtu;
    tx_.mtu = mtu;
  }

  const uint32_t rx_ctrl = regs_->rx_ctrl.load(std::memory_order_relaxed);
  if ((rx_ctrl & ~kNicRxKnownBits) != 0) {
    Fault(NicFault::kRxControl, rx_ctrl);
    regs_->rx_ctrl.store(rx_.rx_ctrl, std::memory_order_relaxed);
  } else {
    rx_.rx_ctrl = rx_ctrl;
  }

  const uint32_t count = regs_->mc_count.load(std::memory_order_relaxed);
  std::array<uint64_t, kNicMulticastSlots> table{};
  bool ok = count <= kNicMulticastSlots;
  for (uint32_t i = 0; ok && i < count; ++i) {
    table[i] = regs_->mc_table[i].load(std::memory_order_relaxed);
    ok = (table[i] >> 48) == 0 && NicMacIsMulticast(table[i]);
  }
  if (ok) {
    rx_.mc_count = count;
    rx_.mc_table = table;
    return;
  }
  Fault(NicFault::kMulticastTable, count);
  regs_->mc_count.store(rx_.mc_count, std::memory_order_relaxed);
  for (uint32_t i = 0; i < kNicMulticastSlots; ++i) {
    regs_->mc_table[i].store(rx_.mc_table[i], std::memory_order_relaxed);
  }
}

void Nic::LatchInterruptMask() {
  const uint32_t set = regs_->int_mask_set.exchange(0, std::memory_order_acq_rel);
  const uint32_t clear = regs_->int_mask_clear.exchange(0, std::memory_order_acq_rel);
  if (((set | clear) & ~kNicIntKnownBits) != 0) {
    Fault(NicFault::kInterruptMask, uint64_t{set} << 32 | clear);
    return;
  }
  const uint32_t old_mask = int_mask_.load(std::memory_order_relaxed);
  const uint32_t mask = (old_mask | set) & ~clear;
  if (mask == old_mask) return;
  int_mask_.store(mask, std::memory_order_relaxed);
  regs_->int_mask.store(mask, std::memory_order_release);
  // A cause that was pending while masked interrupts now.
  const uint32_t cause = regs_->int_cause.load(std::memory_order_acquire);
  if ((cause & mask) != 0 && (cause & old_mask) == 0) {
    irq_signals_.fetch_add(1, std::memory_order_relaxed);
    mem_.interrupt.Signal();
  }
}

uint32_t Nic::ProcessTx() {
  if (!tx_.enabled) return 0;
  const uint32_t tail = regs_->tx_tail.load(std::memory_order_acquire);
  if (tail >= tx_.ring_size) {
    if (tail != tx_.last_bad_tail) {
      tx_.last_bad_tail = tail;
      Fault(NicFault::kRingIndex, tail);
    }
    return 0;
  }
  if (tail == tx_.head) return 0;

  NicDescriptor* ring = reinterpret_cast<NicDescriptor*>(dma_ + tx_.ring_base);
  std::array<FrameView, kTxBatch> frames;
  std::array<uint64_t, kTxBatch> metas;
  uint32_t n = 0;
  uint32_t sent = 0;
  uint64_t octets = 0;
  uint64_t errors = 0;
  for (uint32_t i = tx_.head; i != tail && n < kTxBatch; i = i + 1 == tx_.ring_size ? 0 : i + 1) {
    // Copy the descriptor out once; everything below uses the copies.
    const uint64_t buffer = ring[i].buffer.load(std::memory_order_relaxed);
    const uint64_t meta = ring[i].meta.load(std::memory_order_relaxed);
    const uint32_t length = NicDescLength(meta);
    const uint8_t cmd = NicDescCmd(meta);
    uint8_t status = kNicDescStatusDone;
    if ((cmd & ~kNicDescCmdKnownBits) != 0 || (cmd & kNicDescCmdEop) == 0) {
      Fault(NicFault::kDescriptorCommand, meta);
      status |= kNicDescStatusError;
    } else if (length > kNicMaxFrameSize) {
      Fault(NicFault::kDescriptorLength, length);
      status |= kNicDescStatusError;
    } else if (!RangeInPool(buffer, length)) {
      Fault(NicFault::kDescriptorBuffer, buffer);
      status |= kNicDescStatusError;
    } else if (length < kNicEthHeaderSize || length > tx_.mtu + kNicEthHeaderSize) {
      status |= kNicDescStatusError;  // the driver's mistake, not an attack: counted, not a fault
    } else {
      frames[sent++] = FrameView(dma_ + buffer, length);
      octets += length;
    }
    if ((status & kNicDescStatusError) != 0) ++errors;
    metas[n++] = WithStatus(meta, status);
  }

  if (sent > 0 && link_.load(std::memory_order_relaxed) == LinkState::kUp) {
    backend_->Transmit(std::span<const FrameView>(frames.data(), sent));
  } else {
    errors += sent;  // the cable is out: the frames are lost
    sent = 0;
    octets = 0;
  }

  uint32_t i = tx_.head;
  for (uint32_t k = 0; k < n; ++k) {
    ring[i].meta.store(metas[k], std::memory_order_release);
    i = i + 1 == tx_.ring_size ? 0 : i + 1;
  }
  tx_.head = i;
  regs_->tx_head.store(i, std::memory_order_release);
  if (sent > 0) {
    AddStat(kNicStatTxFrames, sent);
    AddStat(kNicStatTxOctets, octets);
  }
  if (errors > 0) AddStat(kNicStatTxErrors, errors);
  Raise(kNicIntTxDone);
  return n;
}

// ---------------------------------------------------------------------------
// Receive, on the backend's thread.

void Nic::DeliverFrames(std::span<const FrameView> frames) {
  // No GiveWayToHost here: the caller may hold another NIC's locks, and
  // waiting for this NIC's Reset could close a cycle between two NICs.
  std::lock_guard lock(rx_mu_);
  uint64_t received = 0;
  uint64_t octets = 0;
  uint64_t missed = 0;
  uint64_t filtered = 0;
  uint64_t errors = 0;
  uint32_t available = 0;
  const bool receiving = rx_.enabled && link_.load(std::memory_order_relaxed) == LinkState::kUp;
  if (receiving) {
    const uint32_t tail = regs_->rx_tail.load(std::memory_order_acquire);
    if (tail < rx_.ring_size) {
      available = (tail + rx_.ring_size - rx_.head) % rx_.ring_size;
    } else if (tail != rx_.last_bad_tail) {
      rx_.last_bad_tail = tail;
      Fault(NicFault::kRingIndex, tail);
    }
  }
  NicDescriptor* ring = reinterpret_cast<NicDescriptor*>(dma_ + rx_.ring_base);
  for (FrameView frame : frames) {
    if (!receiving) {
      ++missed;
      continue;
    }
    if (frame.size() < kNicEthHeaderSize || frame.size() > rx_.mtu + kNicEthHeaderSize) {
      ++errors;
      continue;
    }
    if (!RxAccepts(rx_, frame)) {
      ++filtered;
      continue;
    }
    if (available == 0) {
      ++missed;
      continue;
    }
    NicDescriptor& desc = ring[rx_.head];
    const uint64_t buffer = desc.buffer.load(std::memory_order_relaxed);
    const uint32_t capacity = NicDescLength(desc.meta.load(std::memory_order_relaxed));
    if (capacity < frame.size()) {
      ++errors;  // the driver's buffers are too small for its MTU; keep the descriptor
      continue;
    }
    const uint32_t next = rx_.head + 1 == rx_.ring_size ? 0 : rx_.head + 1;
    --available;
    if (!RangeInPool(buffer, capacity)) {
      Fault(NicFault::kDescriptorBuffer, buffer);
      desc.meta.store(NicDescMeta(0, 0, kNicDescStatusDone | kNicDescStatusError), std::memory_order_release);
      rx_.head = next;
      ++errors;
      continue;
    }
    std::memcpy(dma_ + buffer, frame.data(), frame.size());
    desc.meta.store(NicDescMeta(static_cast<uint32_t>(frame.size()), 0, kNicDescStatusDone | kNicDescStatusEop),
                    std::memory_order_release);
    rx_.head = next;
    ++received;
    octets += frame.size();
  }
  if (receiving) regs_->rx_head.store(rx_.head, std::memory_order_release);
  if (received > 0) {
    AddStat(kNicStatRxFrames, received);
    AddStat(kNicStatRxOctets, octets);
  }
  if (missed > 0) AddStat(kNicStatRxMissed, missed);
  if (filtered > 0) AddStat(kNicStatRxFiltered, filtered);
  if (errors > 0) AddStat(kNicStatRxErrors, errors);
  uint32_t causes = (received > 0 ? kNicIntRx : 0u) | (missed > 0 && receiving ? kNicIntRxMissed : 0u);
  if (causes != 0) Raise(causes);
}

bool Nic::RxAccepts(const RxState& rx, FrameView frame) const {
  if ((rx.rx_ctrl & kNicRxPromiscuous) != 0) return true;
  const uint64_t dst = DestinationMac(frame);
  if (dst == kBroadcastMac) return (rx.rx_ctrl & kNicRxBroadcast) != 0;
  if (NicMacIsMulticast(dst)) {
    if ((rx.rx_ctrl & kNicRxMulticastPromiscuous) != 0) return true;
    for (uint32_t i = 0; i < rx.mc_count; ++i) {
      if (rx.mc_table[i] == dst) return true;
    }
    return false;
  }
  return (rx.rx_ctrl & kNicRxUnicast) != 0 && dst == rx.mac;
}

// ---------------------------------------------------------------------------
// Registers, interrupts, statistics.

void Nic::PowerOnLocked() {
  tx_ = TxState{};
  rx_ = RxState{};
  rx_.mac = options_.permanent_mac;
  int_mask_.store(0, std::memory_order_relaxed);
  enables_.store(0, std::memory_order_relaxed);
  for (auto& s : stats_) s.store(0, std::memory_order_relaxed);

  NicRegisters& r = *regs_;
  r.magic.store(kNicMagic, std::memory_order_relaxed);
  r.version.store(kNicVersion, std::memory_order_relaxed);
  r.dma_size.store(options_.dma_size, std::memory_order_relaxed);
  r.config_seq.store(0, std::memory_order_relaxed);
  r.config_ack.store(0, std::memory_order_relaxed);
  r.mac_lo.store(NicMacLo(options_.permanent_mac), std::memory_order_relaxed);
  r.mac_hi.store(NicMacHi(options_.permanent_mac), std::memory_order_relaxed);
  r.perm_mac_lo.store(NicMacLo(options_.permanent_mac), std::memory_order_relaxed);
  r.perm_mac_hi.store(NicMacHi(options_.permanent_mac), std::memory_order_relaxed);
  r.mtu.store(kNicDefaultMtu, std::memory_order_relaxed);
  r.rx_ctrl.store(0, std::memory_order_relaxed);
  r.mc_count.store(0, std::memory_order_relaxed);
  for (auto& e : r.mc_table) e.store(0, std::memory_order_relaxed);
  r.int_cause.store(0, std::memory_order_relaxed);
  r.int_mask.store(0, std::memory_order_relaxed);
  r.int_mask_set.store(0, std::memory_order_relaxed);
  r.int_mask_clear.store(0, std::memory_order_relaxed);
  r.tx_ring_base.store(0, std::memory_order_relaxed);
  r.tx_ring_size.store(0, std::memory_order_relaxed);
  r.tx_head.store(0, std::memory_order_relaxed);
  r.tx_tail.store(0, std::memory_order_relaxed);
  r.rx_ring_base.store(0, std::memory_order_relaxed);
  r.rx_ring_size.store(0, std::memory_order_relaxed);
  r.rx_head.store(0, std::memory_order_relaxed);
  r.rx_tail.store(0, std::memory_order_relaxed);
  for (auto& s : r.stats) s.store(0, std::memory_order_relaxed);
  PublishStatus();
  // The reset bit clears last: a driver polling it sees power-on values after.
  r.ctrl.store(0, std::memory_order_release);
  mem_.interrupt.Drain();
}

void Nic::PublishStatus() {
  uint32_t status = static_cast<uint32_t>(options_.speed) << kNicStatusSpeedShift;
  if (link_.load(std::memory_order_relaxed) == LinkState::kUp) status |= kNicStatusLinkUp;
  const uint32_t enables = enables_.load(std::memory_order_relaxed);
  if ((enables & kNicCtrlTxEnable) != 0) status |= kNicStatusTxEnabled;
  if ((enables & kNicCtrlRxEnable) != 0) status |= kNicStatusRxEnabled;
  regs_->status.store(status, std::memory_order_release);
}

void Nic::AddStat(NicStat stat, uint64_t n) {
  const uint64_t v = stats_[stat].fetch_add(n, std::memory_order_relaxed) + n;
  regs_->stats[stat].store(v, std::memory_order_relaxed);
}

// Sets cause bits; signals the interrupt eventfd only when an enabled cause
// becomes pending while none was (the driver has not acknowledged the last).
void Nic::Raise(uint32_t causes) {
  const uint32_t old = regs_->int_cause.fetch_or(causes, std::memory_order_acq_rel);
  const uint32_t mask = int_mask_.load(std::memory_order_relaxed);
  if ((causes & mask) == 0 || (old & mask) != 0) return;
  irq_signals_.fetch_add(1, std::memory_order_relaxed);
  mem_.interrupt.Signal();
}

void Nic::Fault(NicFault fault, uint64_t value) {
  faults_.fetch_add(1, std::memory_order_relaxed);
  if (options_.on_fault) options_.on_fault(fault, value);
}

bool Nic::RangeInPool(uint64_t offset, uint64_t length) const {
  return offset <= options_.dma_size && length <= options_.dma_size - offset;
}

uint64_t Nic::ReadMac() const {
  return NicMacFromRegs(regs_->mac_lo.load(std::memory_order_relaxed), regs_->mac_hi.load(std::memory_order_relaxed));
}

// ---------------------------------------------------------------------------

std::string FormatMac(uint64_t mac) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", unsigned(mac & 0xFF), unsigned((mac >> 8) & 0xFF),
                unsigned((mac >> 16) & 0xFF), unsigned((mac >> 24) & 0xFF), unsigned((mac >> 32) & 0xFF),
                unsigned((mac >> 40) & 0xFF));
  return buf;
}

std::string NicSnapshot::ToString() const {
  char buf[96];
  std::snprintf(buf, sizeof buf, " mtu=%u rx_ctrl=%#x int_mask=%#x enables=%#x mc=[", mtu, rx_ctrl, int_mask,
                ctrl_enables);
  std::string s = "mac=" + FormatMac(mac) + buf;
  for (uint32_t i = 0; i < mc_count && i < kNicMulticastSlots; ++i) {
    if (i > 0) s += ' ';
    s += FormatMac(mc_table[i]);
  }
  return s + "]";
}

NicSnapshot ReadRawSnapshot(const NicRegisters& regs) {
  NicSnapshot s;
  s.mac = NicMacFromRegs(regs.mac_lo.load(std::memory_order_relaxed), regs.mac_hi.load(std::memory_order_relaxed));
  s.mtu = regs.mtu.load(std::memory_order_relaxed);
  s.rx_ctrl = regs.rx_ctrl.load(std::memory_order_relaxed);
  s.mc_count = regs.mc_count.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < s.mc_count && i < kNicMulticastSlots; ++i) {
    s.mc_table[i] = regs.mc_table[i].load(std::memory_order_relaxed);
  }
  s.int_mask = regs.int_mask.load(std::memory_order_relaxed);
  s.ctrl_enables = regs.ctrl.load(std::memory_order_relaxed) & (kNicCtrlTxEnable | kNicCtrlRxEnable);
  return s;
}

}  // namespace umbra::hw::nic
