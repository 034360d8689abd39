#include "drivers/nic/nic_driver.h"

#include <algorithm>
#include <cstring>

#include "drivers/sdk/await.h"
#include "faultinject/failpoint.h"
#include "base/clock.h"

namespace umbra::drivers {

using namespace hw::nic;
using faultinject::Action;
using faultinject::SiteFault;

namespace {

constexpr int64_t kCommitTimeoutNs = 1'000'000'000;

int32_t Status(Errc e) { return static_cast<int32_t>(e); }

}  // namespace

template <class T>
void NicDriver::Fifo<T>::push(const T& v) {
  if (count_ == items_.size()) {
    std::vector<T> bigger(std::max<size_t>(64, items_.size() * 2));
    for (size_t i = 0; i < count_; ++i) bigger[i] = items_[(head_ + i) % items_.size()];
    items_ = std::move(bigger);
    head_ = 0;
  }
  items_[(head_ + count_) % items_.size()] = v;
  ++count_;
}

NicDescriptor* NicDriver::tx_ring() const { return reinterpret_cast<NicDescriptor*>(dma_); }
NicDescriptor* NicDriver::rx_ring() const {
  return reinterpret_cast<NicDescriptor*>(dma_ + uint64_t{ring_} * sizeof(NicDescriptor));
}

// ---------------- bring-up ----------------

Result<void> NicDriver::Probe(sdk::Context& ctx) {
  faultinject::FailpointRegistry::Global().Declare(std::span<const std::string_view>(kNicSites));
  const sdk::HwView& hw = ctx.hw();
  if (hw.registers == nullptr || hw.registers_size < sizeof(NicRegisters)) {
    return Fail(Errc::kNoDevice, "no NIC register window");
  }
  regs_ = reinterpret_cast<NicRegisters*>(hw.registers);
  dma_ = hw.dma;
  dma_size_ = hw.dma_size;
  if (auto it = ctx.device().settings.find("rx_expire_ms"); it != ctx.device().settings.end()) {
    rx_expire_ns_ = std::stoll(it->second) * 1'000'000;
  }
  const Action a = UMBRA_FAILPOINT("nic.probe");
  if (a.fault == SiteFault::kError) return Fail(Errc::kIo, "injected probe failure");

  UMBRA_TRY(ResetDevice(ctx));
  if (regs().magic.load() != kNicMagic || regs().version.load() != kNicVersion) {
    return Fail(Errc::kNoDevice, "not an umbra,e1000-emu (bad magic)");
  }
  permanent_mac_ = NicMacFromRegs(regs().perm_mac_lo.load(), regs().perm_mac_hi.load());
  mac_ = permanent_mac_;
  mtu_ = kNicDefaultMtu;

  // DMA layout: TX ring, RX ring, then one buffer per descriptor for each.
  const uint64_t per_pair = 2 * (sizeof(NicDescriptor) + kBufferSize);
  ring_ = static_cast<uint32_t>(std::min<uint64_t>(kMaxRing, dma_size_ / per_pair));
  if (ring_ < 4) return Fail(Errc::kNoDevice, "DMA pool too small for the rings");
  buffers_base_ = 2 * uint64_t{ring_} * sizeof(NicDescriptor);
  ProgramRings();
  regs().rx_ctrl.store(RxControl());
  regs().int_mask_set.fetch_or(a.fault == SiteFault::kBadRegister ? static_cast<uint32_t>(a.value) : kNicIntKnownBits);
  UMBRA_TRY(Commit(ctx));
  link_up_ = (regs().status.load() & kNicStatusLinkUp) != 0;
  if (rx_expire_ns_ > 0) ctx.Spawn([this, &ctx] { ExpireRxPosts(ctx); });
  ctx.Log(sdk::LogLevel::kDebug, "nic probed: " + std::to_string(ring_) + " descriptors per ring");
  return {};
}

void NicDriver::Stop(sdk::Context& ctx) {
  if (regs_ != nullptr && up_) (void)Close(ctx);
}

Result<void> NicDriver::ResetDevice(sdk::Context& ctx) {
  regs().ctrl.store(kNicCtrlReset, std::memory_order_release);
  ctx.RingDoorbell();
  UMBRA_TRY(sdk::AwaitDevice(
      ctx, [&] { return (regs().ctrl.load(std::memory_order_acquire) & kNicCtrlReset) == 0; }, kCommitTimeoutNs,
      "NIC reset did not complete"));
  seq_ = regs().config_ack.load(std::memory_order_acquire);
  tx_tail_ = tx_clean_ = rx_next_ = 0;
  return {};
}

// Bumps config_seq, rings, and waits for the device to apply the registers.
Result<void> NicDriver::Commit(sdk::Context& ctx) {
  const uint32_t seq = ++seq_;
  regs().config_seq.store(seq, std::memory_order_release);
  ctx.RingDoorbell();
  return sdk::AwaitDevice(
      ctx, [&] { return regs().config_ack.load(std::memory_order_acquire) == seq; }, kCommitTimeoutNs,
      "NIC did not acknowledge its configuration");
}

// Ring bases, sizes and fresh descriptors; head restarts at 0 when enabled.
void NicDriver::ProgramRings() {
  tx_tail_ = tx_clean_ = rx_next_ = 0;
  regs().tx_ring_base.store(0);
  regs().tx_ring_size.store(ring_);
  regs().tx_tail.store(0);
  regs().rx_ring_base.store(uint64_t{ring_} * sizeof(NicDescriptor));
  regs().rx_ring_size.store(ring_);
  for (uint32_t i = 0; i < ring_; ++i) {
    tx_ring()[i].buffer.store(tx_buffer(i), std::memory_order_relaxed);
    tx_ring()[i].meta.store(0, std::memory_order_relaxed);
    rx_ring()[i].buffer.store(rx_buffer(i), std::memory_order_relaxed);
    rx_ring()[i].meta.store(NicDescMeta(kBufferSize, 0, 0), std::memory_order_relaxed);
  }
  regs().rx_tail.store(ring_ - 1, std::memory_order_release);  // one slot kept back
}

uint32_t NicDriver::RxControl() const {
  uint32_t v = kNicRxUnicast | kNicRxBroadcast;
  if (rx_mode_ & net::kNetRxPromiscuous) v |= kNicRxPromiscuous;
  if (rx_mode_ & net::kNetRxAllMulticast) v |= kNicRxMulticastPromiscuous;
  return v;
}

Result<void> NicDriver::Open(sdk::Context& ctx) {
  const Action a = UMBRA_FAILPOINT("nic.open");
  if (a.fault == SiteFault::kError) return Fail(Errc::kIo, "injected open failure");
  // Rings restart from scratch when the enables go 0 → 1. The control
  // register reads back the enables the device took: after a reset or a
  // close they are off already, and turning them off again would cost a
  // commit (a device round trip) in every recovery's replay.
  if (regs().ctrl.load(std::memory_order_acquire) != 0) {
    regs().ctrl.store(0);
    UMBRA_TRY(Commit(ctx));
  }
  ProgramRings();
  regs().ctrl.store(a.fault == SiteFault::kBadRegister ? static_cast<uint32_t>(a.value)
                                                       : kNicCtrlTxEnable | kNicCtrlRxEnable);
  UMBRA_TRY(Commit(ctx));
  up_ = true;
  DeliverRx(ctx);
  return {};
}

Result<void> NicDriver::Close(sdk::Context& ctx) {
  regs().ctrl.store(0);
  UMBRA_TRY(Commit(ctx));
  up_ = false;
  // Frames waiting for ring space are lost, as when a real interface goes down.
  while (!tx_backlog_.empty()) {
    ctx.Complete(tx_backlog_.front(), Status(Errc::kUnavailable), 0);
    tx_backlog_.pop();
  }
  return {};
}

// ---------------- data path ----------------

void NicDriver::OnRequest(sdk::Context& ctx, const ipc::Descriptor& req) {
  switch (req.op) {
    case net::kTx: Transmit(ctx, req); return;
    case net::kRxPost:
      if (!ctx.InPool(req.offset, req.length) || req.length == 0) {
        ctx.Complete(req, Status(Errc::kInvalidArgument), 0);
        return;
      }
      rx_posts_.push(RxPost{req, rx_expire_ns_ > 0 ? MonotonicNanos() : 0});
      if (up_) DeliverRx(ctx);
      return;
    default: ctx.Complete(req, Status(Errc::kInvalidArgument), 0); return;
  }
}

void NicDriver::Transmit(sdk::Context& ctx, const ipc::Descriptor& req) {
  if (!up_) {
    ctx.Complete(req, Status(Errc::kUnavailable), 0);
    return;
  }
  if (!ctx.InPool(req.offset, req.length) || req.length < kNicEthHeaderSize || req.length > mtu_ + kNicEthHeaderSize) {
    ctx.Complete(req, Status(Errc::kInvalidArgument), 0);
    return;
  }
  // Descriptors the device is done with are reclaimed here, as they are on
  // the interrupt: a full ring need not wait for the interrupt to move on.
  ReapTx();
  while (!tx_backlog_.empty() && !TxRingFull()) {
    PutTx(ctx, tx_backlog_.front());
    tx_backlog_.pop();
    tx_unflushed_ = true;
  }
  if (!tx_backlog_.empty() || TxRingFull()) {
    tx_backlog_.push(req);
    return;
  }
  PutTx(ctx, req);
  tx_unflushed_ = true;  // the tail goes to the device at the end of the batch
}

void NicDriver::OnBatchEnd(sdk::Context& ctx) {
  if (tx_unflushed_) FlushTx(ctx);
}

// Copies one frame into the DMA buffer at tx_tail_ and completes the request.
void NicDriver::PutTx(sdk::Context& ctx, const ipc::Descriptor& req) {
  const Action a = UMBRA_FAILPOINT("nic.tx");
  switch (a.fault) {
    case SiteFault::kNone:
    case SiteFault::kMalformedReply:
    case SiteFault::kForgedId:
    case SiteFault::kDuplicateId:
    case SiteFault::kWrongLength: break;
    case SiteFault::kError: ctx.Complete(req, Status(Errc::kIo), 0); return;
    case SiteFault::kDropCompletion: return;  // the request is never completed: the host's deadline catches it
    case SiteFault::kBadRegister:
      regs().tx_tail.store(static_cast<uint32_t>(a.value), std::memory_order_seq_cst);
      ctx.RingDoorbell();
      break;
    case SiteFault::kWildDma:
      tx_ring()[tx_tail_].buffer.store(dma_size_ + static_cast<uint64_t>(a.value), std::memory_order_relaxed);
      tx_ring()[tx_tail_].meta.store(NicDescMeta(req.length, kNicDescCmdEop, 0), std::memory_order_relaxed);
      tx_tail_ = (tx_tail_ + 1) % ring_;
      ctx.Complete(req, 0, 0);
      return;
  }
  std::memcpy(dma_ + tx_buffer(tx_tail_), ctx.pool() + req.offset, req.length);
  tx_ring()[tx_tail_].buffer.store(tx_buffer(tx_tail_), std::memory_order_relaxed);
  tx_ring()[tx_tail_].meta.store(NicDescMeta(req.length, kNicDescCmdEop, 0), std::memory_order_relaxed);
  tx_tail_ = (tx_tail_ + 1) % ring_;
  ++tx_frames_;
  ctx.Complete(req, 0, 0);
}

// Publishes the tail; the doorbell only when the device sleeps.
void NicDriver::FlushTx(sdk::Context& ctx) {
  tx_unflushed_ = false;
  regs().tx_tail.store(tx_tail_, std::memory_order_seq_cst);
  if (regs().device_idle.load(std::memory_order_seq_cst) != 0) ctx.RingDoorbell();
}

void NicDriver::ReapTx() {
  while (tx_clean_ != tx_tail_) {
    NicDescriptor& d = tx_ring()[tx_clean_];
    const uint64_t meta = d.meta.load(std::memory_order_acquire);
    if ((NicDescStatus(meta) & kNicDescStatusDone) == 0) break;
    if ((NicDescStatus(meta) & kNicDescStatusError) != 0) ++tx_errors_;
    d.buffer.store(tx_buffer(tx_clean_), std::memory_order_relaxed);
    d.meta.store(0, std::memory_order_relaxed);
    tx_clean_ = (tx_clean_ + 1) % ring_;
  }
}

void NicDriver::DrainTxBacklog(sdk::Context& ctx) {
  if (tx_backlog_.empty() || !up_) return;
  while (!tx_backlog_.empty() && !TxRingFull()) {
    PutTx(ctx, tx_backlog_.front());
    tx_backlog_.pop();
  }
  FlushTx(ctx);
}

// Copies received frames into the host's posted buffers and recycles the
// descriptors. Frames wait in the ring while the host has no buffer posted.
void NicDriver::DeliverRx(sdk::Context& ctx) {
  while (!rx_posts_.empty()) {
    NicDescriptor& d = rx_ring()[rx_next_];
    const uint64_t meta = d.meta.load(std::memory_order_acquire);
    const uint8_t status = NicDescStatus(meta);
    if ((status & kNicDescStatusDone) == 0) break;
    const uint32_t length = NicDescLength(meta);
    const Action a = UMBRA_FAILPOINT("nic.rx");
    RxPost& post = rx_posts_.front();
    if ((status & kNicDescStatusError) == 0 && length <= post.request.length && length > 0) {
      std::memcpy(ctx.pool() + post.request.offset, dma_ + d.buffer.load(std::memory_order_relaxed), length);
      ++rx_frames_;
      ctx.Complete(post.request, a.fault == SiteFault::kError ? Status(Errc::kIo) : 0,
                   a.fault == SiteFault::kWrongLength ? length + static_cast<uint32_t>(a.value) : length);
      rx_posts_.pop();
    }
    const uint64_t buffer =
        a.fault == SiteFault::kWildDma ? dma_size_ + static_cast<uint64_t>(a.value) : rx_buffer(rx_next_);
    d.buffer.store(buffer, std::memory_order_relaxed);
    d.meta.store(NicDescMeta(kBufferSize, 0, 0), std::memory_order_relaxed);
    regs().rx_tail.store(a.fault == SiteFault::kBadRegister ? static_cast<uint32_t>(a.value) : rx_next_,
                         std::memory_order_release);
    rx_next_ = (rx_next_ + 1) % ring_;
  }
  if (rx_posts_.empty() && up_) {
    const uint64_t meta = rx_ring()[rx_next_].meta.load(std::memory_order_acquire);
    if ((NicDescStatus(meta) & kNicDescStatusDone) != 0) ++rx_no_buffer_;
  }
}

// Hands back buffers held longer than rx_expire_ns_ (a fiber).
void NicDriver::ExpireRxPosts(sdk::Context& ctx) {
  for (;;) {
    const int64_t before = MonotonicNanos();
    ctx.Sleep(rx_expire_ns_ / 2);
    const int64_t now = MonotonicNanos();
    // A context that cannot sleep (the in-process runner) runs no timers.
    if (now - before < rx_expire_ns_ / 4) return;
    while (!rx_posts_.empty() && now - rx_posts_.front().posted_ns > rx_expire_ns_) {
      ctx.Complete(rx_posts_.front().request, 0, 0, net::kRxExpired);
      rx_posts_.pop();
    }
  }
}

void NicDriver::OnInterrupt(sdk::Context& ctx) {
  if (regs_ == nullptr) return;
  const Action a = UMBRA_FAILPOINT("nic.irq");
  if (a.fault == SiteFault::kDropCompletion) return;  // a lost interrupt
  // Acknowledge first, then clean: no completion can slip between the two.
  const uint32_t causes = regs().int_cause.exchange(
      a.fault == SiteFault::kBadRegister ? static_cast<uint32_t>(a.value) : 0, std::memory_order_acq_rel);
  if (causes & kNicIntLinkChange) {
    const bool up = (regs().status.load(std::memory_order_acquire) & kNicStatusLinkUp) != 0;
    if (up != link_up_) ++link_changes_;
    link_up_ = up;
    ctx.Log(sdk::LogLevel::kInfo, link_up_ ? "link up" : "link down");
  }
  ReapTx();
  DrainTxBacklog(ctx);
  if (up_) DeliverRx(ctx);
}

// ---------------- control path ----------------

Result<std::string> NicDriver::OnCall(sdk::Context& ctx, uint32_t method, std::string_view body) {
  if (regs_ == nullptr) return Fail(Errc::kNoDevice, "nic not probed");
  switch (static_cast<net::NetMethod>(method)) {
    case net::kGetInfo: return Info();
    case net::kSetMac: return SetMac(ctx, body);
    case net::kSetMtu: return SetMtu(ctx, body);
    case net::kSetRxMode: return SetRxMode(ctx, body);
    case net::kSetMulticast: return SetMulticast(ctx, body);
    case net::kSetUp: return SetUp(ctx, body);
  }
  return Fail(Errc::kInvalidArgument, "nic has no method " + std::to_string(method));
}

Result<std::string> NicDriver::SetMac(sdk::Context& ctx, std::string_view body) {
  auto b = net::Decode<net::NetMacBody>(body);
  if (!b) return Fail(Errc::kInvalidArgument, "malformed set-mac body");
  if (b->mac == 0 || NicMacIsMulticast(b->mac) || (b->mac >> 48) != 0) {
    return Fail(Errc::kInvalidArgument, "not a unicast station address");
  }
  const Action a = UMBRA_FAILPOINT("nic.set_mac");
  if (a.fault == SiteFault::kError) return Fail(Errc::kIo, "injected set-mac failure");
  const uint64_t value = a.fault == SiteFault::kBadRegister ? b->mac ^ static_cast<uint64_t>(a.value | 0x100) : b->mac;
  regs().mac_lo.store(NicMacLo(value));
  regs().mac_hi.store(NicMacHi(value));
  UMBRA_TRY(Commit(ctx));
  const uint64_t now = NicMacFromRegs(regs().mac_lo.load(), regs().mac_hi.load());
  if (now != value) return Fail(Errc::kInvalidArgument, "the NIC refused the address");
  mac_ = value;
  return std::string();
}

Result<std::string> NicDriver::SetMtu(sdk::Context& ctx, std::string_view body) {
  auto b = net::Decode<net::NetMtuBody>(body);
  if (!b) return Fail(Errc::kInvalidArgument, "malformed set-mtu body");
  if (b->mtu < kNicMinMtu || b->mtu > kNicMaxMtu) {
    return Fail(Errc::kInvalidArgument, "MTU " + std::to_string(b->mtu) + " outside 68..9000");
  }
  const Action a = UMBRA_FAILPOINT("nic.set_mtu");
  if (a.fault == SiteFault::kError) return Fail(Errc::kIo, "injected set-mtu failure");
  regs().mtu.store(a.fault == SiteFault::kBadRegister ? static_cast<uint32_t>(a.value) : b->mtu);
  UMBRA_TRY(Commit(ctx));
  if (regs().mtu.load() != b->mtu) return Fail(Errc::kInvalidArgument, "the NIC refused the MTU");
  mtu_ = b->mtu;
  return std::string();
}

Result<std::string> NicDriver::SetRxMode(sdk::Context& ctx, std::string_view body) {
  auto b = net::Decode<net::NetRxModeBody>(body);
  if (!b || (b->flags & ~net::kNetRxKnownBits) != 0) {
    return Fail(Errc::kInvalidArgument, "malformed receive mode");
  }
  const Action a = UMBRA_FAILPOINT("nic.set_rx_mode");
  if (a.fault == SiteFault::kError) return Fail(Errc::kIo, "injected set-rx-mode failure");
  rx_mode_ = b->flags;
  regs().rx_ctrl.store(a.fault == SiteFault::kBadRegister ? static_cast<uint32_t>(a.value) : RxControl());
  UMBRA_TRY(Commit(ctx));
  return std::string();
}

Result<std::string> NicDriver::SetMulticast(sdk::Context& ctx, std::string_view body) {
  auto b = net::Decode<net::NetMulticastBody>(body);
  if (!b || b->count > kNicMulticastSlots) return Fail(Errc::kInvalidArgument, "malformed multicast list");
  for (uint32_t i = 0; i < b->count; ++i) {
    if (!NicMacIsMulticast(b->entries[i]) || (b->entries[i] >> 48) != 0) {
      return Fail(Errc::kInvalidArgument, "not a multicast address: " + std::to_string(b->entries[i]));
    }
  }
  const Action a = UMBRA_FAILPOINT("nic.set_multicast");
  if (a.fault == SiteFault::kError) return Fail(Errc::kIo, "injected set-multicast failure");
  for (uint32_t i = 0; i < kNicMulticastSlots; ++i) {
    regs().mc_table[i].store(i < b->count ? b->entries[i] : 0, std::memory_order_relaxed);
  }
  if (a.fault == SiteFault::kBadRegister) regs().mc_table[0].store(static_cast<uint64_t>(a.value));
  regs().mc_count.store(b->count, std::memory_order_release);
  UMBRA_TRY(Commit(ctx));
  mc_count_ = b->count;
  std::copy(b->entries, b->entries + kNicMulticastSlots, mc_);
  return std::string();
}

Result<std::string> NicDriver::SetUp(sdk::Context& ctx, std::string_view body) {
  auto b = net::Decode<net::NetUpBody>(body);
  if (!b) return Fail(Errc::kInvalidArgument, "malformed up/down body");
  if ((b->up != 0) == up_) return std::string();
  if (b->up != 0) {
    UMBRA_TRY(Open(ctx));
  } else {
    UMBRA_TRY(Close(ctx));
  }
  return std::string();
}

Result<std::string> NicDriver::Info() {
  const Action a = UMBRA_FAILPOINT("nic.info");
  if (a.fault == SiteFault::kError) return Fail(Errc::kIo, "injected info failure");
  if (a.fault == SiteFault::kMalformedReply) return std::string("junk");
  net::NetInfo info;
  info.permanent_mac = permanent_mac_;
  info.mac = mac_;
  info.mtu = mtu_;
  info.link_up = (regs().status.load(std::memory_order_acquire) & kNicStatusLinkUp) != 0;
  info.up = up_;
  info.rx_mode = rx_mode_;
  info.link_changes = link_changes_;
  info.tx_frames = tx_frames_;
  info.rx_frames = rx_frames_;
  info.rx_no_buffer = rx_no_buffer_;
  info.hw_tx_errors = regs().stats[kNicStatTxErrors].load(std::memory_order_relaxed);
  info.hw_rx_missed = regs().stats[kNicStatRxMissed].load(std::memory_order_relaxed);
  info.hw_rx_filtered = regs().stats[kNicStatRxFiltered].load(std::memory_order_relaxed);
  info.hw_rx_errors = regs().stats[kNicStatRxErrors].load(std::memory_order_relaxed);
  return net::Encode(info);
}

std::map<std::string, uint64_t> NicDriver::Counters() const {
  return {{"tx_frames", tx_frames_},
          {"tx_errors", tx_errors_},
          {"rx_frames", rx_frames_},
          {"rx_no_buffer", rx_no_buffer_},
          {"link_changes", link_changes_}};
}

}  // namespace umbra::drivers
