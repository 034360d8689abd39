#include "shadows/uart/uart_shadow.h"

#include <signal.h>

#include <algorithm>
#include <charconv>
#include <chrono>

#include <spdlog/spdlog.h>

#include "recorder/recorder.h"
#include "base/clock.h"
#include "runtime/supervisor/cookie.h"

namespace umbra::shadows::uart {

namespace proto = drivers::uart;

namespace {

constexpr int64_t kPumpWaitNs = 1'000'000;  // how long the pump sleeps on completions
constexpr int64_t kResyncTimeoutNs = 5'000'000'000;
// A request's cookie (runtime::RequestCookie): its buffer, tagged with its direction.
constexpr uint32_t kWriteTag = 1;
constexpr uint32_t kReadTag = 2;

// Config log ranks: the line before the receiver is enabled.
constexpr int kRankLine = 0;
constexpr int kRankOpen = 1;

std::chrono::nanoseconds Ns(int64_t ns) { return std::chrono::nanoseconds(std::max<int64_t>(0, ns)); }

}  // namespace

Result<std::unique_ptr<UartShadow>> UartShadow::Create(runtime::Host& host, UartShadowOptions options,
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

void UartShadow::ConnectDevice(UartDeviceLink link) {
  std::lock_guard lock(io_mu_);
  link_ = std::move(link);
  rx_next_ = link_.positions().acked;
  link_.acknowledge(*rx_next_);  // from now on the device keeps what this shadow has not queued
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
    io_cv_.wait_for(lock, Ns(deadline - MonotonicNanos()),
                    [&] { return tx_.size() < options_.tx_queue_bytes || state() == ShadowState::kFailed; });
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
  if (!tx_.empty())
    return Fail(Errc::kTimeout, device_name() + ": " + std::to_string(tx_.size()) + " bytes not sent yet");
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
  runtime::Host& h = host();
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
    // A quiet pass: the driver published what it took from the ring.
    if (n == 0) ConfirmHeld();
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
  const uint32_t buffer = runtime::RequestCookie::Decode(c.cookie).index;
  const bool write = runtime::RequestCookie::Decode(c.cookie).tag == kWriteTag;
  auto& list = write ? writes_ : reads_;
  auto it = std::find_if(list.begin(), list.end(), [&](const InFlight& f) { return f.buffer == buffer; });
  if (it == list.end()) return;  // not ours (cannot happen: the host checks ids)
  const InFlight f = *it;
  list.erase(it);
  RecordCompleted(f, c, write);
  if (write) {
    HandleWrite(f, c);
  } else {
    HandleRead(f, c);
  }
  io_cv_.notify_all();
  host().FreeBuffer(f.buffer);
}

void UartShadow::HandleWrite(const InFlight& f, const runtime::Completion& c) {
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
  if (kill) KillDriver("write failed (" + std::string(ErrcName(static_cast<Errc>(c.status))) + ")");
}

void UartShadow::HandleRead(const InFlight& f, const runtime::Completion& c) {
  if (c.status != 0 || c.length == 0) return;  // interrupted by a crash, or nothing arrived in time
  const std::byte* bytes = host().buffer(f.buffer);
  std::string why;
  {
    std::lock_guard lock(io_mu_);
    // From a driver being killed: its bytes come again after the restart.
    if (poisoned_) return;
    if (!link_.positions) {
      AcceptReceived(c.arg, bytes, c.length);
      return;
    }
    const hw::uart::ReceivePositions p = link_.positions();
    if (!p.enabled || p.generation != f.generation) {
      // Its driver's rings were reset: unacknowledged, so the device puts
      // its bytes into the next driver's ring again.
      ++rx_stats_.stale;
      return;
    }
    if (held_ && held_->generation != f.generation) held_.reset();
    why = CheckRead(c.arg, c.length, f.generation, p.consumed);
    if (why.empty()) {
      // This read starts where the held one ends: the held one's length is right.
      if (held_) QueueHeld();
      held_ = HeldRead{.position = c.arg, .generation = f.generation, .bytes = {bytes, bytes + c.length}};
    } else {
      held_.reset();  // unacknowledged: the device delivers it again
      if (!PoisonLocked()) why.clear();
    }
  }
  if (!why.empty()) KillDriver(why);
}

std::string UartShadow::CheckRead(uint64_t position, uint32_t length, uint64_t generation, uint64_t consumed) {
  const std::string read = "read of " + std::to_string(length) + " bytes at " + std::to_string(position);
  if (position + length > consumed) {
    ++rx_stats_.impossible;
    return read + " claims bytes the driver did not take from the ring (it took them up to " +
           std::to_string(consumed) + ")";
  }
  // Reads of one driver instance follow each other; a new instance's first
  // read starts at the device's acknowledged position, at or before rx_next_.
  const bool same_driver = held_.has_value() || rx_generation_ == generation;
  const uint64_t expected = held_ ? held_->end() : rx_next_.value_or(position);
  if (same_driver && position < expected) {
    ++rx_stats_.impossible;
    return read + " overlaps the read before it, which ended at " + std::to_string(expected) + " (a wrong length)";
  }
  if (position > expected) {
    ++rx_stats_.gaps;
    return read + " skips bytes from " + std::to_string(expected) + ": a read completion was lost";
  }
  return "";
}

void UartShadow::ConfirmHeld() {
  if (!held_ || !link_.positions) return;
  const hw::uart::ReceivePositions p = link_.positions();
  if (!p.enabled || p.generation != held_->generation) {
    ++rx_stats_.stale;
    held_.reset();
    return;
  }
  if (p.consumed != held_->end()) return;  // the driver took more: its next read confirms this one
  QueueHeld();
  io_cv_.notify_all();
}

void UartShadow::QueueHeld() {
  AcceptReceived(held_->position, held_->bytes.data(), held_->bytes.size());
  rx_generation_ = held_->generation;
  held_.reset();
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

void UartShadow::AcceptReceived(uint64_t position, const std::byte* bytes, size_t length) {
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
    // Only unconnected: the device did not keep what a dead driver consumed.
    rx_stats_.lost += position - next;
    spdlog::warn("[{}] uart: {} received bytes lost before position {}", device_name(), position - next, position);
  }
  rx_.insert(rx_.end(), bytes + skip, bytes + length);
  rx_stats_.bytes += length - skip;
  rx_next_ = position + length;
  if (link_.acknowledge) link_.acknowledge(*rx_next_);
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
  runtime::Host& h = host();
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
    runtime::Request req{.op = proto::kWrite,
                         .offset = *buf,
                         .length = len,
                         .capacity = len,
                         .cookie = runtime::RequestCookie{.index = *buf, .tag = kWriteTag}.Encode()};
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
  runtime::Host& h = host();
  while (reads_.size() < options_.reads_posted) {
    uint64_t generation = 0;
    {
      std::lock_guard lock(io_mu_);
      const size_t held = held_ ? held_->bytes.size() : 0;
      if (rx_.size() + held + (reads_.size() + 1) * h.buffer_size() > options_.rx_queue_bytes) return;
      if (link_.positions) generation = link_.positions().generation;
    }
    auto buf = h.AllocBuffer();
    if (!buf) return;
    runtime::Request req{.op = proto::kRead,
                         .offset = *buf,
                         .length = h.buffer_size(),
                         .capacity = h.buffer_size(),
                         .cookie = runtime::RequestCookie{.index = *buf, .tag = kReadTag}.Encode()};
    auto sent = h.Submit({&req, 1});
    if (!sent || *sent == 0) {
      h.FreeBuffer(*buf);
      return;
    }
    reads_.push_back(InFlight{.buffer = *buf, .length = h.buffer_size(), .generation = generation});
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

const SettingsSchema<UartShadowOptions>& UartSettings() {
  static const auto schema = SettingsSchema<UartShadowOptions>("uart")
                                 .Count("tx_queue_bytes", &UartShadowOptions::tx_queue_bytes)
                                 .Count("rx_queue_bytes", &UartShadowOptions::rx_queue_bytes);
  return schema;
}

Result<std::unique_ptr<Shadow>> CreateUartShadow(runtime::Host& host, const ShadowSettings& settings,
                                                 RecoveryMode mode) {
  const UartShadowOptions o = UMBRA_TRY(UartSettings().Parse(settings));
  auto shadow = UMBRA_TRY(UartShadow::Create(host, o, mode));
  return std::unique_ptr<Shadow>(std::move(shadow));
}

}  // namespace umbra::shadows::uart
