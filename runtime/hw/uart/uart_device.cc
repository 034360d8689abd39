#include "runtime/hw/uart/uart_device.h"

#include <poll.h>
#include <pthread.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "base/clock.h"

namespace umbra::hw::uart {

namespace {

constexpr int64_t kMaxBurstNs = 1'000'000;      // paced: at most 1 ms (or one character) at once
constexpr int64_t kFarEndFullPollNs = 200'000;  // the far end stopped reading: look again soon

}  // namespace

Result<std::unique_ptr<UartDevice>> UartDevice::Create(UartOptions options) {
  if (options.dma_size < 2 * kMinRingSize || options.dma_size > (1u << 30)) {
    return Fail(Errc::kInvalidArgument, "uart dma_size must be in [32 B, 1 GiB]");
  }
  if (options.line_capacity == 0) return Fail(Errc::kInvalidArgument, "uart line_capacity must be > 0");
  if (options.rx_keep_bytes < kMinRingSize) {
    return Fail(Errc::kInvalidArgument, "uart rx_keep_bytes must be >= " + std::to_string(kMinRingSize));
  }
  auto mem = UMBRA_TRY(
      DeviceMemory::Create(options.name + "-regs-dma", kRegisterWindowSize, kDmaPoolOffset, options.dma_size));
  auto wake = UMBRA_TRY(ipc::EventFd::Create());
  auto device = std::unique_ptr<UartDevice>(new UartDevice(std::move(options), std::move(mem), std::move(wake)));
  UartDevice* d = device.get();
  device->line_.set_wake([d] { d->wake_.Signal(); });
  std::lock_guard lock(device->mu_);
  device->regs_->tx_total.store(0, std::memory_order_relaxed);
  device->regs_->framing_errors.store(0, std::memory_order_relaxed);
  device->PowerOnRegisters();
  return device;
}

UartDevice::UartDevice(UartOptions options, DeviceMemory mem, ipc::EventFd wake)
    : options_(std::move(options)), mem_(std::move(mem)), wake_(std::move(wake)),
      regs_(mem_.region->at<UartRegisters>(0)), line_(options_.line_capacity) {}

UartDevice::~UartDevice() { Stop(); }

Resources UartDevice::resources() const { return mem_.resources(); }

uint64_t UartDevice::faults() const {
  std::lock_guard lock(mu_);
  return counters_.ring_config_faults + counters_.line_config_faults + counters_.ring_pointer_faults;
}

LineConfig UartDevice::line_config() const {
  std::lock_guard lock(mu_);
  return line_config_;
}

UartCounters UartDevice::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

// ---- lifecycle ----

void UartDevice::Start() {
  if (thread_.joinable()) return;
  stop_.store(false, std::memory_order_release);
  thread_ = std::thread([this] { Run(); });
  pthread_setname_np(thread_.native_handle(), (options_.name + "-hw").substr(0, 15).c_str());
}

void UartDevice::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  wake_.Signal();
  thread_.join();
}

void UartDevice::Reset() {
  {
    std::lock_guard lock(mu_);
    ++counters_.resets;
    PowerOnRegisters();
    mem_.interrupt.Drain();
  }
  wake_.Signal();
}

void UartDevice::PowerOnRegisters() {
  enabled_ = rx_enabled_ = false;
  last_control_ = 0;
  tx_offset_ = rx_offset_ = 0;
  tx_size_ = rx_size_ = 0;
  tx_head_ = rx_tail_ = 0;
  bad_tx_tail_ = bad_rx_head_ = 0;
  line_config_ = LineConfig{};
  next_tx_ns_ = 0;
  regs_->magic.store(kMagic, std::memory_order_relaxed);
  regs_->version.store(kVersion, std::memory_order_relaxed);
  regs_->clock_hz.store(kClockHz, std::memory_order_relaxed);
  regs_->max_ring_size.store(kMaxRingSize, std::memory_order_relaxed);
  regs_->dma_size.store(options_.dma_size, std::memory_order_relaxed);
  regs_->status.store(0, std::memory_order_relaxed);
  regs_->control.store(0, std::memory_order_relaxed);
  regs_->tx_offset.store(0, std::memory_order_relaxed);
  regs_->rx_offset.store(0, std::memory_order_relaxed);
  regs_->tx_size.store(0, std::memory_order_relaxed);
  regs_->rx_size.store(0, std::memory_order_relaxed);
  regs_->divisor.store(kPowerOnDivisor, std::memory_order_relaxed);
  regs_->data_bits.store(8, std::memory_order_relaxed);
  regs_->parity.store(static_cast<uint32_t>(Parity::kNone), std::memory_order_relaxed);
  regs_->stop_bits.store(1, std::memory_order_relaxed);
  regs_->line_request.store(0, std::memory_order_relaxed);
  regs_->line_ack.store(0, std::memory_order_relaxed);
  regs_->tx_tail.store(0, std::memory_order_relaxed);
  regs_->tx_head.store(0, std::memory_order_relaxed);
  regs_->rx_tail.store(0, std::memory_order_relaxed);
  regs_->rx_head.store(0, std::memory_order_relaxed);
  regs_->int_enable.store(0, std::memory_order_relaxed);
  regs_->int_cause.store(0, std::memory_order_relaxed);
  regs_->active_divisor.store(kPowerOnDivisor, std::memory_order_relaxed);
  regs_->active_data_bits.store(8, std::memory_order_relaxed);
  regs_->active_parity.store(static_cast<uint32_t>(Parity::kNone), std::memory_order_relaxed);
  regs_->rx_total.store(rx_total_, std::memory_order_relaxed);
  regs_->rx_origin.store(rx_acked_, std::memory_order_relaxed);
  regs_->active_stop_bits.store(1, std::memory_order_release);
}

// ---- receive positions ----

ReceivePositions UartDevice::receive_positions() {
  std::lock_guard lock(mu_);
  if (enabled_) ObserveRxHead();
  return ReceivePositions{.total = rx_total_,
                          .acked = rx_acked_,
                          .consumed = rx_consumed_,
                          .generation = rx_generation_,
                          .enabled = enabled_};
}

void UartDevice::AcknowledgeReceived(uint64_t position) {
  {
    std::lock_guard lock(mu_);
    reader_acks_ = true;
    rx_acked_ = std::max(rx_acked_, std::min(position, rx_total_));
    TrimKept();
  }
  wake_.Signal();  // the keep may have room for the line's bytes again
}

void UartDevice::ObserveRxHead() {
  const uint32_t head = regs_->rx_head.load(std::memory_order_acquire);
  // Forward, and not past what the ring holds; anything else is refused
  // (Receive counts it) and leaves the consumed position where it was.
  if (head - rx_head_seen_ > rx_tail_ - rx_head_seen_) return;
  rx_consumed_ += head - rx_head_seen_;
  rx_head_seen_ = head;
  if (!reader_acks_) rx_acked_ = std::max(rx_acked_, rx_consumed_);
}

void UartDevice::TrimKept() {
  const uint64_t keep_from = std::min(rx_acked_, rx_ring_next_);
  if (keep_from <= rx_kept_from_) return;
  rx_kept_.erase(rx_kept_.begin(), rx_kept_.begin() + static_cast<ptrdiff_t>(keep_from - rx_kept_from_));
  rx_kept_from_ = keep_from;
}

// ---- the hardware thread ----

void UartDevice::Run() {
  while (!stop_.load(std::memory_order_acquire)) {
    int64_t sleep_ns;
    {
      std::lock_guard lock(mu_);
      sleep_ns = Step();
    }
    if (sleep_ns == 0) continue;
    pollfd fds[2] = {{mem_.doorbell.fd(), POLLIN, 0}, {wake_.fd(), POLLIN, 0}};
    const int timeout_ms = sleep_ns < 0 ? -1 : static_cast<int>(std::max<int64_t>(1, sleep_ns / 1'000'000));
    if (::poll(fds, 2, timeout_ms) > 0) {
      mem_.doorbell.Drain();
      wake_.Drain();
    }
  }
}

int64_t UartDevice::Step() {
  ApplyControl();
  ApplyLineRequest();
  if (!enabled_) return -1;
  Receive();
  return Transmit(MonotonicNanos());
}

bool UartDevice::RingOk(uint64_t offset, uint32_t size) const {
  return size >= kMinRingSize && size <= kMaxRingSize && std::has_single_bit(size) && offset % kRingAlignment == 0 &&
         offset <= options_.dma_size && size <= options_.dma_size - offset;
}

void UartDevice::ApplyControl() {
  const uint32_t control = regs_->control.load(std::memory_order_acquire);
  rx_enabled_ = (control & kControlRxEnable) != 0;
  const bool want = (control & kControlEnable) != 0;
  const bool was = (last_control_ & kControlEnable) != 0;
  last_control_ = control;
  if (want == was) return;
  if (!want) {
    enabled_ = false;
    regs_->status.fetch_and(~kStatusEnabled, std::memory_order_release);
    return;
  }
  // Copied out once, then validated: the driver may change them at any time.
  const uint64_t tx_off = regs_->tx_offset.load(std::memory_order_relaxed);
  const uint64_t rx_off = regs_->rx_offset.load(std::memory_order_relaxed);
  const uint32_t tx_size = regs_->tx_size.load(std::memory_order_relaxed);
  const uint32_t rx_size = regs_->rx_size.load(std::memory_order_relaxed);
  const bool overlap =
      RingOk(tx_off, tx_size) && RingOk(rx_off, rx_size) && tx_off < rx_off + rx_size && rx_off < tx_off + tx_size;
  if (!RingOk(tx_off, tx_size) || !RingOk(rx_off, rx_size) || overlap) {
    ++counters_.ring_config_faults;
    regs_->status.store(kStatusConfigError, std::memory_order_release);
    return;
  }
  tx_offset_ = tx_off;
  rx_offset_ = rx_off;
  tx_size_ = tx_size;
  rx_size_ = rx_size;
  tx_head_ = regs_->tx_tail.load(std::memory_order_acquire);  // start with an empty TX ring
  regs_->tx_head.store(tx_head_, std::memory_order_release);
  rx_tail_ = regs_->rx_head.load(std::memory_order_acquire);
  regs_->rx_tail.store(rx_tail_, std::memory_order_release);
  // The ring starts at the acknowledged position: every kept byte after it
  // goes into the ring again, with its position.
  rx_head_seen_ = rx_tail_;
  rx_ring_next_ = rx_consumed_ = rx_acked_;
  counters_.rx_redelivered += rx_total_ - rx_ring_next_;
  TrimKept();
  ++rx_generation_;
  regs_->rx_origin.store(rx_ring_next_, std::memory_order_relaxed);  // published by the status store
  enabled_ = true;
  regs_->status.store(kStatusEnabled, std::memory_order_release);
}

void UartDevice::ApplyLineRequest() {
  const uint32_t request = regs_->line_request.load(std::memory_order_acquire);
  if (request == regs_->line_ack.load(std::memory_order_relaxed)) return;
  const uint32_t divisor = regs_->divisor.load(std::memory_order_relaxed);
  const uint32_t data_bits = regs_->data_bits.load(std::memory_order_relaxed);
  const uint32_t parity = regs_->parity.load(std::memory_order_relaxed);
  const uint32_t stop_bits = regs_->stop_bits.load(std::memory_order_relaxed);
  const bool ok = divisor >= 1 && divisor <= kMaxDivisor && data_bits >= 5 && data_bits <= 8 && parity <= kMaxParity &&
                  stop_bits >= 1 && stop_bits <= 2;
  if (!ok) {
    ++counters_.line_config_faults;
    regs_->status.fetch_or(kStatusLineError, std::memory_order_relaxed);
  } else {
    line_config_ = LineConfig{.baud = kClockHz / (16 * divisor),
                              .parity = static_cast<Parity>(parity),
                              .data_bits = data_bits,
                              .stop_bits = stop_bits};
    regs_->active_divisor.store(divisor, std::memory_order_relaxed);
    regs_->active_data_bits.store(data_bits, std::memory_order_relaxed);
    regs_->active_parity.store(parity, std::memory_order_relaxed);
    regs_->active_stop_bits.store(stop_bits, std::memory_order_relaxed);
    regs_->status.fetch_and(~kStatusLineError, std::memory_order_relaxed);
  }
  regs_->line_ack.store(request, std::memory_order_release);
}

int64_t UartDevice::Transmit(int64_t now) {
  const uint32_t tail = regs_->tx_tail.load(std::memory_order_acquire);
  const uint32_t pending = tail - tx_head_;
  if (pending > tx_size_) {
    if (tail != bad_tx_tail_) ++counters_.ring_pointer_faults;
    bad_tx_tail_ = tail;
    return -1;
  }
  if (pending == 0) return -1;
  size_t n = std::min<size_t>(pending, line_.DeviceSpace());
  const int64_t frame_ns = int64_t{1'000'000'000} * FrameBits(line_config_) / line_config_.baud;
  if (options_.paced) {
    next_tx_ns_ = std::max(next_tx_ns_, now - std::max(kMaxBurstNs, frame_ns));
    n = std::min<size_t>(n, static_cast<size_t>(std::max<int64_t>(0, (now - next_tx_ns_) / frame_ns)));
  }
  const std::byte* ring = dma() + tx_offset_;
  for (size_t i = 0; i < n; ++i) {
    line_.DeviceTransmit(ring[tx_head_ & (tx_size_ - 1)], line_config_);
    ++tx_head_;
    regs_->tx_total.fetch_add(1, std::memory_order_relaxed);
  }
  next_tx_ns_ += static_cast<int64_t>(n) * frame_ns;
  regs_->tx_head.store(tx_head_, std::memory_order_release);
  if (n > 0) Raise(kIntTx);
  if (n == pending) return -1;
  if (options_.paced && n < pending && line_.DeviceSpace() > 0)
    return std::max<int64_t>(1, next_tx_ns_ + frame_ns - now);
  return kFarEndFullPollNs;
}

void UartDevice::Receive() {
  if (!rx_enabled_) return;
  const uint32_t head = regs_->rx_head.load(std::memory_order_acquire);
  const uint32_t used = rx_tail_ - head;
  if (used > rx_size_) {
    if (head != bad_rx_head_) ++counters_.ring_pointer_faults;
    bad_rx_head_ = head;
    return;
  }
  ObserveRxHead();
  TrimKept();
  const uint32_t room = rx_size_ - used;
  if (room == 0) return;
  // Kept bytes not in the ring yet come first: the line's are younger.
  if (rx_total_ - rx_ring_next_ < room) TakeFromLine(room - (rx_total_ - rx_ring_next_));
  const auto n = static_cast<uint32_t>(std::min<uint64_t>(room, rx_total_ - rx_ring_next_));
  if (n == 0) return;
  std::byte* ring = dma() + rx_offset_;
  auto from = rx_kept_.begin() + static_cast<ptrdiff_t>(rx_ring_next_ - rx_kept_from_);
  for (uint32_t i = 0; i < n; ++i, ++from) ring[(rx_tail_ + i) & (rx_size_ - 1)] = *from;
  rx_tail_ += n;
  rx_ring_next_ += n;
  regs_->rx_tail.store(rx_tail_, std::memory_order_release);
  Raise(kIntRx);
}

void UartDevice::TakeFromLine(uint64_t room) {
  const uint64_t unacked = rx_total_ - rx_kept_from_;
  if (unacked >= options_.rx_keep_bytes) return;  // flow control: the reader is behind
  std::byte buf[4096];
  const size_t want = std::min<uint64_t>({room, options_.rx_keep_bytes - unacked, sizeof buf});
  uint64_t framing = 0;
  const size_t n = line_.DeviceTake({buf, want}, line_config_, &framing);
  if (framing != 0) regs_->framing_errors.fetch_add(framing, std::memory_order_relaxed);
  rx_kept_.insert(rx_kept_.end(), buf, buf + n);
  rx_total_ += n;
  regs_->rx_total.store(rx_total_, std::memory_order_relaxed);  // published by the rx_tail store
}

void UartDevice::Raise(uint32_t cause) {
  const uint32_t before = regs_->int_cause.fetch_or(cause, std::memory_order_acq_rel);
  if ((before & cause) == cause) return;  // already pending: no new edge
  if ((regs_->int_enable.load(std::memory_order_acquire) & cause) == 0) return;
  ++counters_.interrupts;
  mem_.interrupt.Signal();
}

}  // namespace umbra::hw::uart
