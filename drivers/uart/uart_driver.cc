#include "drivers/uart/uart_driver.h"

#include <algorithm>
#include <cstring>

#include "drivers/sdk/await.h"
#include "drivers/sdk/probe.h"
#include "faultinject/failpoint.h"
#include "base/clock.h"

namespace umbra::drivers::uart {

namespace hwu = hw::uart;
using faultinject::SiteFault;

namespace {

constexpr int64_t kDeviceTimeoutNs = 200'000'000;  // enable and line requests

// Copies `n` bytes into a ring of `size` (a power of two) at free-running `index`.
void CopyIn(std::byte* ring, uint32_t size, uint32_t index, const std::byte* from, uint32_t n) {
  const uint32_t at = index & (size - 1);
  const uint32_t first = std::min(n, size - at);
  std::memcpy(ring + at, from, first);
  std::memcpy(ring, from + first, n - first);
}

void CopyOut(const std::byte* ring, uint32_t size, uint32_t index, std::byte* to, uint32_t n) {
  const uint32_t at = index & (size - 1);
  const uint32_t first = std::min(n, size - at);
  std::memcpy(to, ring + at, first);
  std::memcpy(to + first, ring, n - first);
}

// Blocks the calling fiber until `done()` or the timeout (polling briefly
// first: sdk::AwaitDevice); false on timeout.
template <class Pred>
bool WaitFor(sdk::Context& ctx, Pred done) {
  return sdk::AwaitDevice(ctx, done, kDeviceTimeoutNs, "device timeout").has_value();
}

}  // namespace

Result<void> UartDriver::Probe(sdk::Context& ctx) {
  const auto dev = UMBRA_TRY(sdk::MapRegisters<hwu::UartRegisters>(ctx, {.device = hwu::kCompatible,
                                                                         .sites = kUartSites,
                                                                         .probe_site = "uart.probe",
                                                                         .magic = hwu::kMagic,
                                                                         .version = hwu::kVersion}));
  regs_ = dev.regs;
  if (dev.dma_size < 2 * kRingSize || regs_->max_ring_size.load() < kRingSize) {
    return umbra::Fail(Errc::kNoDevice, "uart DMA pool too small for the rings");
  }
  if (auto it = ctx.device().settings.find("read_timeout_ms"); it != ctx.device().settings.end()) {
    read_timeout_ns_ = std::stoll(it->second) * 1'000'000;
  }
  tx_ring_ = dev.dma;
  rx_ring_ = dev.dma + kRingSize;
  regs_->control.store(0);
  regs_->tx_offset.store(0);
  regs_->tx_size.store(kRingSize);
  regs_->rx_offset.store(kRingSize);
  regs_->rx_size.store(kRingSize);
  tx_tail_ = regs_->tx_tail.load();
  rx_head_ = regs_->rx_head.load();
  regs_->int_enable.store(hwu::kIntTx | hwu::kIntRx);
  regs_->control.store(hwu::kControlEnable);
  ctx.RingDoorbell();
  if (!WaitFor(ctx, [&] { return (regs_->status.load() & (hwu::kStatusEnabled | hwu::kStatusConfigError)) != 0; })) {
    return umbra::Fail(Errc::kTimeout, "uart did not enable its rings");
  }
  if ((regs_->status.load() & hwu::kStatusEnabled) == 0) {
    return umbra::Fail(Errc::kNoDevice, "uart refused the ring configuration");
  }
  rx_position_ = regs_->rx_origin.load(std::memory_order_acquire);
  if (read_timeout_ns_ > 0) {
    ctx.Spawn([this, &ctx] {
      for (;;) {
        ctx.Sleep(read_timeout_ns_ / 2);
        ExpireReads(ctx);
      }
    });
  }
  ctx.Log(sdk::LogLevel::kDebug, "uart probed, instance " + std::to_string(ctx.device().instance));
  return {};
}

void UartDriver::Stop(sdk::Context&) {
  if (regs_ != nullptr) regs_->control.store(0);
}

void UartDriver::Fail(sdk::Context& ctx, const ipc::Descriptor& req, Errc code) {
  ctx.Complete(req, static_cast<int32_t>(code), 0);
}

void UartDriver::OnRequest(sdk::Context& ctx, const ipc::Descriptor& req) {
  switch (req.op) {
    case kWrite: {
      if (!ctx.InPool(req.offset, req.length)) return Fail(ctx, req, Errc::kInvalidArgument);
      switch (faultinject::Action f = UMBRA_FAILPOINT("uart.tx"); f.fault) {
        case SiteFault::kNone: break;
        case SiteFault::kError: return Fail(ctx, req, Errc::kIo);
        case SiteFault::kDropCompletion: return;  // the bug: the write is forgotten
        case SiteFault::kBadRegister:             // the bug: a tail far past the ring
          regs_->tx_tail.store(tx_tail_ + 2 * kRingSize + static_cast<uint32_t>(f.value), std::memory_order_release);
          ctx.RingDoorbell();
          return;
        case SiteFault::kWrongLength:  // the bug: claims more than was written
          ctx.Complete(req, 0, req.length + 1 + static_cast<uint32_t>(f.value), req.arg);
          return;
        case SiteFault::kWildDma:  // ring offsets are only read at enable
        case SiteFault::kMalformedReply:
        case SiteFault::kForgedId:
        case SiteFault::kDuplicateId: break;  // the SDK's sdk.request site plants these
      }
      writes_.push_back(PendingWrite{.request = req, .end = tx_tail_});  // `end` final once copied
      ServiceTx(ctx);
      return;
    }
    case kRead:
      if (req.length == 0 || !ctx.InPool(req.offset, req.length)) return Fail(ctx, req, Errc::kInvalidArgument);
      reads_.push_back(PendingRead{.request = req, .posted_ns = MonotonicNanos()});
      ServiceRx(ctx);
      return;
    default: return Fail(ctx, req, Errc::kInvalidArgument);
  }
}

void UartDriver::ServiceTx(sdk::Context& ctx) {
  const uint32_t head = regs_->tx_head.load(std::memory_order_acquire);
  // Complete, in order, the writes whose last byte is on the line.
  while (!writes_.empty()) {
    const PendingWrite& w = writes_.front();
    if (w.copied != w.request.length || static_cast<int32_t>(head - w.end) < 0) break;
    bytes_written_ += w.request.length;
    ctx.Complete(w.request, 0, w.request.length, w.request.arg);
    writes_.pop_front();
  }
  uint32_t space = kRingSize - std::min(kRingSize, tx_tail_ - head);
  bool produced = false;
  for (PendingWrite& w : writes_) {
    if (space == 0) break;
    if (w.copied == w.request.length) continue;
    const uint32_t n = std::min(space, w.request.length - w.copied);
    CopyIn(tx_ring_, kRingSize, tx_tail_, ctx.pool() + w.request.offset + w.copied, n);
    w.copied += n;
    tx_tail_ += n;
    space -= n;
    produced = true;
    if (w.copied == w.request.length) w.end = tx_tail_;
  }
  if (!produced) return;
  regs_->tx_tail.store(tx_tail_, std::memory_order_release);
  ctx.RingDoorbell();
}

void UartDriver::ServiceRx(sdk::Context& ctx) {
  switch (faultinject::Action f = UMBRA_FAILPOINT("uart.rx"); f.fault) {
    case SiteFault::kNone: break;
    case SiteFault::kDropCompletion: return;  // the bug: received bytes sit in the ring
    case SiteFault::kWrongLength:             // the bug: claims more than the buffer holds
      if (!reads_.empty()) {
        ctx.Complete(reads_.front().request, 0, reads_.front().request.length + 1 + static_cast<uint32_t>(f.value));
        reads_.pop_front();
      }
      return;
    case SiteFault::kBadRegister:  // the bug: an rx_head past rx_tail
      regs_->rx_head.store(rx_head_ + kRingSize + 1, std::memory_order_release);
      ctx.RingDoorbell();
      return;
    case SiteFault::kError:
    case SiteFault::kWildDma:
    case SiteFault::kMalformedReply:
    case SiteFault::kForgedId:
    case SiteFault::kDuplicateId: break;  // not meaningful here
  }
  const uint32_t tail = regs_->rx_tail.load(std::memory_order_acquire);
  bool consumed = false;
  while (!reads_.empty() && tail != rx_head_) {
    const uint32_t avail = tail - rx_head_;
    if (avail > kRingSize) break;  // the device is broken; leave it to the watchdog
    const ipc::Descriptor& r = reads_.front().request;
    const uint32_t n = std::min(avail, r.length);
    CopyOut(rx_ring_, kRingSize, rx_head_, ctx.pool() + r.offset, n);
    ctx.Complete(r, 0, n, rx_position_);
    rx_head_ += n;
    rx_position_ += n;
    bytes_read_ += n;
    consumed = true;
    reads_.pop_front();
  }
  if (!consumed) return;
  regs_->rx_head.store(rx_head_, std::memory_order_release);
  ctx.RingDoorbell();  // the device may be waiting for room
}

void UartDriver::ExpireReads(sdk::Context& ctx) {
  const int64_t now = MonotonicNanos();
  while (!reads_.empty() && now - reads_.front().posted_ns >= read_timeout_ns_) {
    ctx.Complete(reads_.front().request, 0, 0, reads_.front().request.arg);
    reads_.pop_front();
  }
}

void UartDriver::OnInterrupt(sdk::Context& ctx) {
  ++interrupts_;
  if (UMBRA_FAILPOINT("uart.interrupt").fault == SiteFault::kDropCompletion) return;  // a lost interrupt
  // Acknowledge first, then look: a cause raised after this is a new edge.
  regs_->int_cause.fetch_and(~(hwu::kIntTx | hwu::kIntRx), std::memory_order_acq_rel);
  ServiceTx(ctx);
  ServiceRx(ctx);
}

Result<void> UartDriver::SetLine(sdk::Context& ctx, const LineSettings& s) {
  uint32_t divisor = 0;
  if (s.baud != 0 && hwu::kClockHz % (16 * s.baud) == 0) divisor = hwu::kClockHz / (16 * s.baud);
  if (divisor == 0 || divisor > hwu::kMaxDivisor) {
    return umbra::Fail(Errc::kInvalidArgument, std::to_string(s.baud) + " baud is not reachable from the uart clock");
  }
  switch (faultinject::Action f = UMBRA_FAILPOINT("uart.set_line"); f.fault) {
    case SiteFault::kNone: break;
    case SiteFault::kError: return umbra::Fail(Errc::kIo, "uart.set_line: injected error");
    case SiteFault::kBadRegister: divisor = 0; break;  // the bug: a divisor the device refuses
    case SiteFault::kWildDma:
    case SiteFault::kWrongLength:
    case SiteFault::kMalformedReply:
    case SiteFault::kForgedId:
    case SiteFault::kDuplicateId:
    case SiteFault::kDropCompletion: break;  // not meaningful here
  }
  regs_->divisor.store(divisor);
  regs_->data_bits.store(s.data_bits);
  regs_->parity.store(static_cast<uint32_t>(s.parity));
  regs_->stop_bits.store(s.stop_bits);
  const uint32_t request = regs_->line_request.load() + 1;
  regs_->line_request.store(request, std::memory_order_release);
  ctx.RingDoorbell();
  if (!WaitFor(ctx, [&] { return regs_->line_ack.load(std::memory_order_acquire) == request; })) {
    return umbra::Fail(Errc::kTimeout, "uart did not acknowledge the line settings");
  }
  if ((regs_->status.load() & hwu::kStatusLineError) != 0) {
    return umbra::Fail(Errc::kInvalidArgument, "uart refused line settings " + EncodeLine(s));
  }
  return {};
}

Result<std::string> UartDriver::OnCall(sdk::Context& ctx, uint32_t method, std::string_view body) {
  switch (method) {
    case kSetLine: {
      auto s = DecodeLine(body);
      if (!s) return umbra::Fail(Errc::kInvalidArgument, "malformed line settings '" + std::string(body) + "'");
      UMBRA_TRY(SetLine(ctx, *s));
      return std::string();
    }
    case kGetLine: {
      const uint32_t divisor = std::max<uint32_t>(1, regs_->active_divisor.load());
      LineSettings s{.baud = hwu::kClockHz / (16 * divisor),
                     .parity = static_cast<Parity>(std::min<uint32_t>(regs_->active_parity.load(), 2)),
                     .data_bits = static_cast<uint8_t>(regs_->active_data_bits.load()),
                     .stop_bits = static_cast<uint8_t>(regs_->active_stop_bits.load())};
      return EncodeLine(s);
    }
    case kOpen:
      regs_->control.fetch_or(hwu::kControlRxEnable, std::memory_order_release);
      ctx.RingDoorbell();
      return std::string();
    case kGetTxTotal: return std::to_string(regs_->tx_total.load(std::memory_order_acquire));
    default: return umbra::Fail(Errc::kInvalidArgument, "uart has no method " + std::to_string(method));
  }
}

std::map<std::string, uint64_t> UartDriver::Counters() const {
  return {{"bytes_written", bytes_written_}, {"bytes_read", bytes_read_}, {"interrupts", interrupts_}};
}

}  // namespace umbra::drivers::uart
