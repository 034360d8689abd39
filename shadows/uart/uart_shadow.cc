#include "shadows/uart/uart_shadow.h"

#include <signal.h>

#include <algorithm>
#include <charconv>
#include <chrono>

#include <spdlog/spdlog.h>

#include "recorder/recorder.h"
#include "base/clock.h"

namespace umbra::shadows::uart {

namespace proto = drivers::uart;

namespace {

constexpr int64_t kPumpWaitNs = 1'000'000;  // how long the pump sleeps on completions
constexpr int64_t kResyncTimeoutNs = 5'000'000'000;
constexpr uint64_t kWriteCookie = 1ull << 32;
constexpr uint64_t kReadCookie = 2ull << 32;

// Config log ranks: the line before the receiver is enabled.
constexpr int kRankLine = 0;
constexpr int kRankOpen = 1;

std::chrono::nanoseconds Ns(int64_t ns) { return std::chrono::nanoseconds(std::max<int64_t>(0, ns)); }

}  // namespace

Result<std::unique_ptr<UartShadow>> UartShadow::Create(runtime::DriverHost& host, UartShadowOptions options,
                                                       RecoveryMode mode) {
  if (options.tx_queue_bytes == 0 || options.rx_queue_bytes == 0 || options.writes_in_flight == 0 ||
      options.reads_posted == 0) {
    return Fail(Errc::kInvalidArgument, "uart shadow queue sizes must be > 0");
  }
  return std::unique_ptr<UartShadow>(new UartShadow(host, Options{.class_name = "uart", .mode = mode}, options));
}

UartShadow::~UartShadow() {
  {
    std::lock_guard lock(io_mu_);
    pump_stop_ = true;
  }
  io_cv_.notify_all();
  if (pump_.joinable()) pump_.join();
  Stop();
}

// ---------------- Port (client threads) ----------------

Result<void> UartShadow::CheckUsable() const {
  if (state() == ShadowState::kFailed) return std::unexpected(FailedError());
  if (state() == ShadowState::kStopped) return Fail(Errc::kNoDevice, device_name() + " is stopped");
  return {};
}

Result<void> UartShadow::Open() {
  UMBRA_TRY(CheckUsable());
  UMBRA_TRY(ConfigCall("open", kRankOpen, proto::kOpen, ""));
  std::lock_guard lock(io_mu_);
  if (open_) return {};
  open_ = true;
  pump_ = std::thread([this] { PumpLoop(); });
  return {};
}

Result<void> UartShadow::SetLine(const LineSettings& s) {
  // Refused here, before it is logged: a value the log holds must replay.
  if (!proto::StandardBaud(s.baud)) {
    return Fail(Errc::kInvalidArgument, std::to_string(s.baud) + " is not a standard baud rate");
  }
  const std::string encoded = proto::EncodeLine(s);
  if (!proto::DecodeLine(encoded)) return Fail(Errc::kInvalidArgument, "bad line settings " + encoded);
  UMBRA_TRY(CheckUsable());
  UMBRA_TRY(ConfigCall("line", kRankLine, proto::kSetLine, encoded));
  return {};
}

LineSettings UartShadow::line() const {
  auto& self = const_cast<UartShadow&>(*this);
  std::lock_guard lock(self.config_mu());
  auto v = self.config_log().Get("line");
  if (!v) return LineSettings{};
  return proto::DecodeLine(*v).value_or(LineSettings{});
}

Result<LineSettings> UartShadow::DriverLine() {
  auto r = UMBRA_TRY(host().Call(proto::kGetLine, "", 1'000'000'000));
  auto s = proto::DecodeLine(r);
  if (!s) return Fail(Errc::kProtocol, "driver reported malformed line settings '" + r + "'");
  return *s;
}

uint64_t UartShadow::bytes_on_line() const {
  std::lock_guard lock(io_mu_);
  return confirmed_;
}

UartReceiveStats UartShadow::receive_stats() const {
  std::lock_guard lock(io_mu_);
  return rx_stats_;
}

Result<size_t> UartShadow::Write(std::span<const std::byte> bytes, int64_t timeout_ns) {
  const int64_t deadline = MonotonicNanos() + timeout_ns;
  UMBRA_TRY(CheckServing());
  std::unique_lock lock(io_mu_);
  if (!open_) return Fail(Errc::kInvalidArgument, device_name() + ": open the port first");
  size_t queued = 0;
  while (queued < bytes.size()) {
    io_cv_.wait_for(lock, Ns(deadline - MonotonicNanos()), [&] {
      return tx_.size() < options_.tx_queue_bytes || state() == ShadowState::kFailed;
    });
    if (state() == ShadowState::kFailed) return std::unexpected(FailedError());
    if (tx_.size() >= options_.tx_queue_bytes) break;  // timed out
    const size_t n = std::min(bytes.size() - queued, options_.tx_queue_bytes - tx_.size());
    tx_.insert(tx_.end(), bytes.begin() + queued, bytes.begin() + queued + n);
    queued += n;
    if (!passive()) CountQueued(n);
  }
  lock.unlock();
  io_cv_.notify_all();
  if (queued == 0) return Fail(Errc::kTimeout, device_name() + ": write queue full");
  return queued;
}

Result<size_t> UartShadow::Read(std::span<std::byte> out, int64_t timeout_ns) {
  UMBRA_TRY(CheckUsable());
  std::unique_lock lock(io_mu_);
  if (!open_) return Fail(Errc::kInvalidArgument, device_name() + ": open the port first");
  io_cv_.wait_for(lock, Ns(timeout_ns), [&] { return !rx_.empty() || state() == ShadowState::kFailed; });
  if (rx_.empty() && state() == ShadowState::kFailed) return std::unexpected(FailedError());
  if (rx_.empty()) return Fail(Errc::kTimeout, device_name() + ": nothing received");
  const size_t n = std::min(out.size(), rx_.size());
  std::copy_n(rx_.begin(), n, out.begin());
  rx_.erase(rx_.begin(), rx_.begin() + n);
  return n;
}

Result<void> UartShadow::Drain(int64_t timeout_ns) {
  std::unique_lock lock(io_mu_);
  io_cv_.wait_for(lock, Ns(timeout_ns), [&] { return tx_.empty() || state() == ShadowState::kFailed; });
  if (state() == ShadowState::kFailed) return std::unexpected(FailedError());
  if (!tx_.empty()) return Fail(Errc::kTimeout, device_name() + ": " + std::to_string(tx_.size()) + " bytes not sent yet");
  return {};
}

// ---------------- recovery hooks ----------------

void UartShadow::OnDriverLost() {
  std::lock_guard lock(io_mu_);
  need_resync_ = true;  // the pump submits nothing until the new driver's tx_total is known
}

Result<void> UartShadow::ResubmitRequests() {
  // Ask the new driver how many bytes the device ever put on the line; the
  // pump turns that into "which queued bytes are already out".
  auto reply = UMBRA_TRY(CallDriver(proto::kGetTxTotal, ""));
  uint64_t total = 0;
  auto [end, ec] = std::from_chars(reply.data(), reply.data() + reply.size(), total);
  if (ec != std::errc() || end != reply.data() + reply.size()) {
    return Fail(Errc::kProtocol, "driver reported a malformed tx_total '" + reply + "'");
  }
  std::unique_lock lock(io_mu_);
  if (!open_) {  // no pump yet: nothing was ever sent; this is the base
    base_total_ = total;
    base_stream_ = confirmed_;
    sent_since_base_ = 0;
    need_resync_ = false;
    return {};
  }
  const uint64_t before = resyncs_;
  resync_total_ = total;
  resync_error_.reset();
  io_cv_.notify_all();
  if (!io_cv_.wait_for(lock, Ns(kResyncTimeoutNs), [&] { return resyncs_ != before || pump_stop_; })) {
    resync_total_.reset();
    return Fail(Errc::kTimeout, "the uart pump did not drain the interrupted writes");
  }
  if (resync_error_) return std::unexpected(*resync_error_);
  return {};
}

void UartShadow::OnFailed(const std::string&) { io_cv_.notify_all(); }

// ---------------- the pump thread ----------------

void UartShadow::PumpLoop() {
  runtime::DriverHost& h = host();
  runtime::Completion done[16];
  for (;;) {
    {
      std::lock_guard lock(io_mu_);
      if (pump_stop_) break;
    }
    size_t n = h.Poll(done);
    if (n == 0 && (!writes_.empty() || !reads_.empty())) n = h.Wait(done, kPumpWaitNs);
    for (size_t i = 0; i < n; ++i) HandleCompletion(done[i]);
    std::unique_lock lock(io_mu_);
    if (resync_total_ && writes_.empty()) ApplyResync();
    const bool can_submit = passive() && !need_resync_ && !poisoned_;
    lock.unlock();
    if (can_submit) {
      SubmitWrites();
      PostReads();
    }
    if (n == 0 && writes_.empty() && reads_.empty()) {
      lock.lock();
      io_cv_.wait_for(lock, Ns(kPumpWaitNs), [&] {
        return pump_stop_ || resync_total_.has_value() || (tx_.size() > submitted_ && passive());
      });
    }
  }
  for (const InFlight& f : writes_) h.FreeBuffer(f.buffer);
  for (const InFlight& f : reads_) h.FreeBuffer(f.buffer);
}

void UartShadow::HandleCompletion(const runtime::Completion& c) {
  runtime::DriverHost& h = host();
  const uint32_t buffer = static_cast<uint32_t>(c.cookie);
  auto& list = (c.cookie & kWriteCookie) != 0 ? writes_ : reads_;
  auto it = std::find_if(list.begin(), list.end(), [&](const InFlight& f) { return f.buffer == buffer; });
  if (it == list.end()) return;  // not ours (cannot happen: the host checks ids)
  const InFlight f = *it;
  list.erase(it);
  RecordCompleted(f, c, (c.cookie & kWriteCookie) != 0);
  if ((c.cookie & kWriteCookie) != 0) {
    bool kill = false;
    {
      std::lock_guard lock(io_mu_);
      submitted_ -= f.length;
      const bool whole = c.status == 0 && c.length == f.length;
      if (whole && !poisoned_) {
        // Completions come in order, so this write is the front of tx_.
        tx_.erase(tx_.begin(), tx_.begin() + f.length);
        confirmed_ += f.length;
      } else if (!whole && c.status != static_cast<int32_t>(Errc::kInterrupted)) {
        // A driver that fails a write (or claims a partial one) cannot be
        // trusted to say how much got out: turn it into a crash, whose
        // recovery reads the truth from the device's tx_total.
        kill = PoisonLocked();
      }
    }
    io_cv_.notify_all();
    if (kill) KillDriver("write failed (" + std::string(ErrcName(static_cast<Errc>(c.status))) + ")");
  } else if (c.status == 0 && c.length > 0) {
    if (!DeviceReceived(c.arg, c.length)) {
      // Its bytes are not passed on: the device holds the ring's bytes over
      // the reset, and the next driver delivers them again.
      bool kill;
      {
        std::lock_guard lock(io_mu_);
        ++rx_stats_.impossible;
        kill = PoisonLocked();
      }
      if (kill) {
        KillDriver("read of " + std::to_string(c.length) + " bytes at " + std::to_string(c.arg) +
                   " claims bytes the device never received");
      }
    } else {
      std::string why;
      {
        std::lock_guard lock(io_mu_);
        if (poisoned_) {
          // From a driver being killed: its bytes come again from the
          // UART's hold-over, after the gap it may have left.
        } else if (!LostACompletion(c.arg)) {
          AcceptReceived(c.arg, h.buffer(f.buffer), c.length);
        } else if (PoisonLocked()) {
          why = "read at " + std::to_string(c.arg) + " skips bytes from " + std::to_string(*rx_next_) +
                ": a read completion was lost";
        }
      }
      if (!why.empty()) KillDriver(why);
    }
    io_cv_.notify_all();
  }
  h.FreeBuffer(f.buffer);
}

bool UartShadow::LostACompletion(uint64_t position) {
  if (!rx_next_ || position <= *rx_next_ || refused_gap_at_ == *rx_next_) return false;
  // Bytes before `position` were taken from the ring and never delivered: the
  // driver lost a read completion (reads complete in order). The UART holds
  // the ring's bytes, consumed or not, over a reset, so a restart delivers
  // them again. Once per gap: if the next driver starts past it too, the
  // bytes were overwritten before the reset and are lost (AcceptReceived).
  refused_gap_at_ = *rx_next_;
  ++rx_stats_.gaps;
  return true;
}

bool UartShadow::DeviceReceived(uint64_t position, uint32_t length) {
  if (!options_.device_rx_total) return true;
  rx_total_seen_ = std::max(rx_total_seen_, options_.device_rx_total());
  return position + length <= rx_total_seen_;
}

bool UartShadow::PoisonLocked() {
  if (poisoned_) return false;  // already on its way out
  poisoned_ = true;
  return true;
}

void UartShadow::KillDriver(const std::string& why) {
  spdlog::warn("[{}] uart: {}, restarting the driver", device_name(), why);
  host().Kill(SIGKILL);
}

void UartShadow::AcceptReceived(uint64_t position, const std::byte* bytes, uint32_t length) {
  const uint64_t next = rx_next_.value_or(position);
  if (position + length <= next) {  // all seen before the driver died
    rx_stats_.duplicates += length;
    return;
  }
  uint64_t skip = 0;
  if (position < next) {
    skip = next - position;
    rx_stats_.duplicates += skip;
  } else if (position > next) {
    // Overwritten in the ring before the reset could hold it over (more
    // arrived than the ring holds while the consumed bytes were unseen).
    rx_stats_.lost += position - next;
    spdlog::warn("[{}] uart: {} received bytes lost before position {}", device_name(), position - next,
                 position);
  }
  rx_.insert(rx_.end(), bytes + skip, bytes + length);
  rx_stats_.bytes += length - skip;
  rx_next_ = position + length;
}

// Under io_mu_, with no write in flight: the interrupted writes are all back.
void UartShadow::ApplyResync() {
  const uint64_t total = *resync_total_;
  resync_total_.reset();
  ++resyncs_;
  const uint64_t on_line = base_stream_ + (total - base_total_);
  if (total < base_total_ || on_line < confirmed_ || on_line > base_stream_ + sent_since_base_) {
    resync_error_ = Error{Errc::kProtocol, "driver reported tx_total " + std::to_string(total) +
                                              ", inconsistent with the bytes sent to the line"};
    io_cv_.notify_all();
    return;
  }
  const uint64_t out = on_line - confirmed_;
  tx_.erase(tx_.begin(), tx_.begin() + static_cast<ptrdiff_t>(out));
  confirmed_ = on_line;
  // What had been handed to the dead driver and did not get out is sent again.
  const uint64_t resend = base_stream_ + sent_since_base_ - on_line;
  if (mode() == RecoveryMode::kRestartOnly) {
    tx_.erase(tx_.begin(), tx_.begin() + static_cast<ptrdiff_t>(resend));
    confirmed_ += resend;  // dropped, never to be sent: the stream moves past them
    CountDropped(resend);
  } else {
    CountResubmitted(resend);
  }
  base_total_ = total;
  base_stream_ = confirmed_;
  sent_since_base_ = 0;
  need_resync_ = false;
  poisoned_ = false;
  io_cv_.notify_all();
}

void UartShadow::SubmitWrites() {
  runtime::DriverHost& h = host();
  while (writes_.size() < options_.writes_in_flight) {
    // Checked and submitted under io_mu_: OnDriverLost sets need_resync_
    // under it too, so no write can slip past a crash into the next driver
    // ahead of the bytes the crash interrupted.
    std::unique_lock lock(io_mu_);
    if (need_resync_ || poisoned_) return;
    const size_t unsent = tx_.size() - submitted_;
    if (unsent == 0) return;
    auto buf = h.AllocBuffer();
    if (!buf) return;
    const uint32_t len = static_cast<uint32_t>(std::min<size_t>(unsent, h.buffer_size()));
    std::copy_n(tx_.begin() + static_cast<ptrdiff_t>(submitted_), len, h.buffer(*buf));
    runtime::Request req{.op = proto::kWrite, .offset = *buf, .length = len, .capacity = len,
                         .cookie = kWriteCookie | *buf};
    auto sent = h.Submit({&req, 1});
    if (!sent || *sent == 0) {
      h.FreeBuffer(*buf);
      return;  // went down, or the ring is full: try again next pass
    }
    submitted_ += len;
    sent_since_base_ += len;
    writes_.push_back(InFlight{.buffer = *buf, .length = len});
    RecordSubmitted(writes_.back(), true);
  }
}

void UartShadow::PostReads() {
  runtime::DriverHost& h = host();
  while (reads_.size() < options_.reads_posted) {
    {
      std::lock_guard lock(io_mu_);
      if (rx_.size() + (reads_.size() + 1) * h.buffer_size() > options_.rx_queue_bytes) return;
    }
    auto buf = h.AllocBuffer();
    if (!buf) return;
    runtime::Request req{.op = proto::kRead, .offset = *buf, .length = h.buffer_size(),
                         .capacity = h.buffer_size(), .cookie = kReadCookie | *buf};
    auto sent = h.Submit({&req, 1});
    if (!sent || *sent == 0) {
      h.FreeBuffer(*buf);
      return;
    }
    reads_.push_back(InFlight{.buffer = *buf, .length = h.buffer_size()});
    RecordSubmitted(reads_.back(), false);
  }
}

void UartShadow::RecordSubmitted(InFlight& f, bool write) {
  recorder::Recorder& rec = host().recorder();
  if (!rec.on()) return;
  f.submitted_ns = MonotonicNanos();
  rec.RequestSubmitted(host().recorder_device(), write ? recorder::RequestOp::kWrite : recorder::RequestOp::kRead,
                       f.length, f.submitted_ns);
}

// A read that came back empty got nothing for the application: like an
// expired net receive buffer, it is not a completion. The latency of a read
// is how long it waited for bytes to arrive.
void UartShadow::RecordCompleted(const InFlight& f, const runtime::Completion& c, bool write) {
  recorder::Recorder& rec = host().recorder();
  if (!rec.on() || (!write && c.status == 0 && c.length == 0)) return;
  const int64_t now = MonotonicNanos();
  const bool whole = !write || c.length == f.length;
  const recorder::RequestOutcome outcome =
      c.status == 0 && !whole ? recorder::RequestOutcome::kFailed : recorder::OutcomeOfStatus(c.status);
  rec.RequestCompleted(host().recorder_device(), write ? recorder::RequestOp::kWrite : recorder::RequestOp::kRead,
                       write ? f.length : c.length, f.submitted_ns != 0 ? now - f.submitted_ns : 0, outcome, now);
}

// ---------------- factory ----------------

Result<std::unique_ptr<Shadow>> CreateUartShadow(runtime::DriverHost& host, const ShadowSettings& settings,
                                                 RecoveryMode mode) {
  UartShadowOptions o;
  for (const auto& [key, value] : settings) {
    size_t* field = key == "tx_queue_bytes" ? &o.tx_queue_bytes
                    : key == "rx_queue_bytes" ? &o.rx_queue_bytes
                                              : nullptr;
    if (field == nullptr) return Fail(Errc::kInvalidArgument, "uart shadow has no setting '" + key + "'");
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), *field);
    if (ec != std::errc() || end != value.data() + value.size()) {
      return Fail(Errc::kInvalidArgument, "uart shadow setting " + key + "='" + value + "' is not a number");
    }
  }
  auto shadow = UMBRA_TRY(UartShadow::Create(host, o, mode));
  return std::unique_ptr<Shadow>(std::move(shadow));
}

}  // namespace umbra::shadows::uart
