#include "shadows/net/net_shadow.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "recorder/recorder.h"
#include "base/clock.h"
#include "runtime/supervisor/cookie.h"
#include "protocols/net/net_protocol.h"

namespace umbra::net {

using shadows::RecoveryMode;
using shadows::ShadowState;

namespace {

constexpr size_t kBatch = 64;
constexpr int64_t kWaitSliceNs = 2'000'000;
constexpr int64_t kTxWaitNs = 50'000'000;  // longest a full device holds Transmit

// Replay order: the address first, "up" last.
enum Rank { kRankMac = 0, kRankMtu = 1, kRankRxMode = 2, kRankMulticast = 3, kRankUp = 4 };

}  // namespace

Result<std::unique_ptr<NetShadow>> NetShadow::Create(runtime::Host& host, NetShadowOptions options, RecoveryMode mode) {
  if (options.rx_buffers == 0) return Fail(Errc::kInvalidArgument, "net shadow needs RX buffers");
  Options o{.class_name = "net", .mode = mode, .call_timeout_ns = options.call_timeout_ns};
  return std::unique_ptr<NetShadow>(new NetShadow(host, std::move(o), options));
}

NetShadow::NetShadow(runtime::Host& host, Options options, NetShadowOptions net_options)
    : Shadow(host, std::move(options)), net_options_(net_options), recorder_(host.recorder()),
      recorder_device_(host.recorder_device()) {}

NetShadow::~NetShadow() { Stop(); }

Result<void> NetShadow::Open(int64_t timeout_ns) {
  Start();
  UMBRA_TRY(WaitUntilPassive(timeout_ns));
  auto reply = host().Call(kGetInfo, "", net_options_.call_timeout_ns);
  if (!reply) return std::unexpected(reply.error());
  auto info = Decode<NetInfo>(*reply);
  if (!info) return Fail(Errc::kProtocol, "driver sent a malformed info reply");
  permanent_mac_ = info->permanent_mac;
  mac_ = info->mac;
  mtu_ = info->mtu;
  link_up_ = info->link_up != 0;
  std::lock_guard lock(dp_mu_);
  EnsureBuffersLocked();
  PostRxLocked();
  return {};
}

// ---------------- configuration ----------------

Result<void> NetShadow::Config(const char* key, int rank, uint32_t method, std::string body) {
  UMBRA_TRY(ConfigCall(key, rank, method, std::move(body)));
  return {};
}

Result<void> NetShadow::Up() { return Config("up", kRankUp, kSetUp, Encode(NetUpBody{.up = 1})); }
Result<void> NetShadow::Down() { return Config("up", kRankUp, kSetUp, Encode(NetUpBody{.up = 0})); }

Result<void> NetShadow::SetMac(uint64_t mac) {
  if (mac == 0 || (mac & 1) != 0 || (mac >> 48) != 0) {
    return Fail(Errc::kInvalidArgument, "not a unicast station address");
  }
  UMBRA_TRY(Config("mac", kRankMac, kSetMac, Encode(NetMacBody{.mac = mac})));
  mac_ = mac;
  return {};
}

Result<void> NetShadow::SetMtu(uint32_t mtu) {
  if (mtu < 68 || mtu > 9000) return Fail(Errc::kInvalidArgument, "MTU outside 68..9000");
  UMBRA_TRY(Config("mtu", kRankMtu, kSetMtu, Encode(NetMtuBody{.mtu = mtu})));
  mtu_ = mtu;
  return {};
}

Result<void> NetShadow::SetRxMode(RxMode mode) {
  const uint32_t flags = (mode.promiscuous ? kNetRxPromiscuous : 0u) | (mode.all_multicast ? kNetRxAllMulticast : 0u);
  return Config("rx_mode", kRankRxMode, kSetRxMode, Encode(NetRxModeBody{.flags = flags}));
}

Result<void> NetShadow::SetMulticast(std::span<const uint64_t> addresses) {
  if (addresses.size() > kNetMaxMulticast) return Fail(Errc::kInvalidArgument, "more than 64 multicast addresses");
  NetMulticastBody body;
  body.count = static_cast<uint32_t>(addresses.size());
  for (size_t i = 0; i < addresses.size(); ++i) {
    if ((addresses[i] & 1) == 0 || (addresses[i] >> 48) != 0) {
      return Fail(Errc::kInvalidArgument, "not a multicast address");
    }
    body.entries[i] = addresses[i];
  }
  return Config("multicast", kRankMulticast, kSetMulticast, Encode(body));
}

NetStats NetShadow::Stats() const {
  if (!passive()) const_cast<NetShadow*>(this)->CountAnswered();
  return NetStats{.tx_frames = tx_frames_.load(),
                  .tx_bytes = tx_bytes_.load(),
                  .tx_dropped = tx_dropped_.load(),
                  .rx_frames = rx_frames_.load(),
                  .rx_bytes = rx_bytes_.load(),
                  .recoveries = recoveries().size()};
}

bool NetShadow::LinkUp() {
  if (!passive()) {
    CountAnswered();
    return link_up_.load();
  }
  auto reply = host().Call(kGetInfo, "", net_options_.call_timeout_ns);
  if (reply) {
    if (auto info = Decode<NetInfo>(*reply)) link_up_ = info->link_up != 0;
  }
  return link_up_.load();
}

// ---------------- data path ----------------

Result<size_t> NetShadow::Transmit(std::span<const FrameView> frames) {
  UMBRA_TRY(CheckServing());
  for (const FrameView& f : frames) {
    if (f.size() < 14 || f.size() > host().buffer_size() || f.size() > Mtu() + 14u) {
      return Fail(Errc::kInvalidArgument, "frame of " + std::to_string(f.size()) + " bytes");
    }
  }
  if (!passive()) {
    // Drop policy: the network tolerates loss; the sender is told it went.
    CountDropped(frames.size());
    tx_dropped_.fetch_add(frames.size(), std::memory_order_relaxed);
    return frames.size();
  }
  std::lock_guard lock(dp_mu_);
  EnsureBuffersLocked();  // an application may transmit before it ever receives or opens
  runtime::Host& h = host();
  size_t done = 0;
  uint64_t bytes = 0;
  int64_t wait_until = 0;
  while (done < frames.size()) {
    if (tx_free_.empty()) PollLocked();
    size_t n = 0;
    while (n < kBatch && done + n < frames.size() && !tx_free_.empty()) {
      const FrameView f = frames[done + n];
      const uint32_t off = tx_free_.back();
      tx_free_.pop_back();
      std::memcpy(h.buffer(off), f.data(), f.size());
      requests_[n] = runtime::Request{.op = kTx,
                                      .offset = off,
                                      .length = static_cast<uint32_t>(f.size()),
                                      .capacity = static_cast<uint32_t>(f.size()),
                                      .cookie = runtime::RequestCookie{.index = off, .tag = kTxTag}.Encode()};
      bytes += f.size();
      ++n;
    }
    size_t sent = 0;
    if (n > 0) {
      auto r = h.Submit({requests_.data(), n});
      if (!r) {
        // The driver went down under us: what was not sent is dropped.
        for (size_t i = 0; i < n; ++i) tx_free_.push_back(requests_[i].offset);
        CountDropped(frames.size() - done);
        tx_dropped_.fetch_add(frames.size() - done, std::memory_order_relaxed);
        done = frames.size();
        break;
      }
      sent = *r;
      RecordTransmittedLocked({requests_.data(), sent});
      for (size_t i = sent; i < n; ++i) {
        tx_free_.push_back(requests_[i].offset);
        bytes -= requests_[i].length;
      }
      done += sent;
    }
    if (done == frames.size()) break;
    if (sent > 0) continue;
    // Full: wait for completions, but not forever.
    const int64_t now = MonotonicNanos();
    if (wait_until == 0) wait_until = now + kTxWaitNs;
    if (now >= wait_until) break;
    const size_t got = h.Wait(completions_, std::min(kWaitSliceNs, wait_until - now));
    HandleLocked({completions_.data(), got});
    if (!passive()) break;
  }
  tx_frames_.fetch_add(done, std::memory_order_relaxed);
  tx_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  PollLocked();
  return done;
}

Result<size_t> NetShadow::Receive(std::span<FrameView> out, int64_t timeout_ns) {
  UMBRA_TRY(CheckServing());
  if (out.empty()) return size_t{0};
  const int64_t deadline = MonotonicNanos() + timeout_ns;
  for (;;) {
    {
      std::lock_guard lock(dp_mu_);
      EnsureBuffersLocked();
      for (uint32_t off : lent_) rx_idle_.push_back(off);
      lent_.clear();
      const bool live = passive();
      if (live) {
        PollLocked();
        PostRxLocked();
      }
      if (size_t n = DeliverLocked(out); n > 0) return n;
      const int64_t now = MonotonicNanos();
      if (now >= deadline) return size_t{0};
      if (live && rx_posted_ > 0) {
        const size_t got = host().Wait(completions_, std::min(kWaitSliceNs, deadline - now));
        HandleLocked({completions_.data(), got});
        if (size_t n = DeliverLocked(out); n > 0) return n;
        continue;
      }
    }
    UMBRA_TRY(CheckServing());
    const int64_t left = deadline - MonotonicNanos();
    if (left <= 0) return size_t{0};
    if (passive()) {
      usleep(100);  // nothing posted (the ring refused): try again shortly
    } else {
      (void)WaitUntilPassive(std::min<int64_t>(left, 10'000'000));
    }
  }
}

void NetShadow::EnsureBuffersLocked() {
  if (buffers_ready_) return;
  buffers_ready_ = true;
  runtime::Host& h = host();
  buffer_size_ = h.buffer_size();
  requests_.resize(std::max<size_t>(kBatch, net_options_.rx_buffers));
  completions_.resize(256);
  std::vector<uint32_t> all;
  while (auto off = h.AllocBuffer()) all.push_back(*off);
  const size_t rx = std::min<size_t>(net_options_.rx_buffers, all.size() / 2);
  rx_idle_.assign(all.begin(), all.begin() + static_cast<ptrdiff_t>(rx));
  tx_free_.assign(all.begin() + static_cast<ptrdiff_t>(rx), all.end());
  ready_.reserve(rx);
  lent_.reserve(rx);
  uint32_t last = 0;
  for (uint32_t off : all) last = std::max(last, off);
  if (buffer_size_ > 0) submitted_.assign(last / buffer_size_ + 1, Submitted{0, 0});
}

size_t NetShadow::PollLocked() {
  size_t total = 0;
  if (completions_.empty()) return 0;  // buffers not set up yet: nothing can be in flight
  for (;;) {
    const size_t got = host().Poll(completions_);
    HandleLocked({completions_.data(), got});
    total += got;
    if (got < completions_.size()) return total;
  }
}

void NetShadow::HandleLocked(std::span<const runtime::Completion> done) {
  RecordCompletionsLocked(done);
  bool frame = false;
  for (const runtime::Completion& c : done) {
    const uint32_t off = runtime::RequestCookie::Decode(c.cookie).index;
    if (runtime::RequestCookie::Decode(c.cookie).tag == kTxTag) {
      tx_free_.push_back(off);
      if (c.status != 0) tx_dropped_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    --rx_posted_;
    if (c.status == 0 && c.length > 0 && c.arg != kRxExpired) {
      ready_.push_back(Ready{off, c.length});
      frame = true;
    } else {
      rx_idle_.push_back(off);
    }
  }
  if (frame && await_first_rx_.load(std::memory_order_relaxed)) {
    first_rx_after_recovery_ns_ = MonotonicNanos();
    await_first_rx_ = false;
  }
}

void NetShadow::PostRxLocked() {
  size_t n = 0;
  while (n < rx_idle_.size() && n < requests_.size()) {
    const uint32_t off = rx_idle_[rx_idle_.size() - 1 - n];
    requests_[n] = runtime::Request{.op = kRxPost,
                                    .offset = off,
                                    .length = buffer_size_,
                                    .capacity = buffer_size_,
                                    .cookie = runtime::RequestCookie{.index = off, .tag = kRxTag}.Encode()};
    ++n;
  }
  if (n == 0) return;
  auto r = host().Submit({requests_.data(), n});
  if (!r || *r == 0) return;
  RecordPostedLocked({requests_.data(), *r});
  rx_idle_.resize(rx_idle_.size() - *r);
  rx_posted_ += static_cast<uint32_t>(*r);
}

size_t NetShadow::DeliverLocked(std::span<FrameView> out) {
  size_t n = 0;
  uint64_t bytes = 0;
  runtime::Host& h = host();
  while (n < out.size() && ready_head_ < ready_.size()) {
    const Ready& r = ready_[ready_head_++];
    out[n++] = FrameView(h.buffer(r.offset), r.length);
    lent_.push_back(r.offset);
    bytes += r.length;
  }
  if (ready_head_ == ready_.size()) {
    ready_.clear();
    ready_head_ = 0;
  }
  if (n > 0) {
    rx_frames_.fetch_add(n, std::memory_order_relaxed);
    rx_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  }
  return n;
}

// ---------------- recording ----------------

NetShadow::Submitted* NetShadow::SubmittedLocked(uint32_t offset) {
  const size_t index = buffer_size_ == 0 ? submitted_.size() : offset / buffer_size_;
  return index < submitted_.size() ? &submitted_[index] : nullptr;
}

void NetShadow::RecordTransmittedLocked(std::span<const runtime::Request> sent) {
  if (!recorder_.on() || sent.empty()) return;
  const int64_t now = MonotonicNanos();
  for (const runtime::Request& q : sent) {
    if (Submitted* s = SubmittedLocked(q.offset)) *s = Submitted{now, q.length};
    recorder_.RequestSubmitted(recorder_device_, recorder::RequestOp::kTransmit, q.length, now);
  }
}

void NetShadow::RecordPostedLocked(std::span<const runtime::Request> posted) {
  if (!recorder_.on() || posted.empty()) return;
  const int64_t now = MonotonicNanos();
  for (const runtime::Request& q : posted) {
    if (Submitted* s = SubmittedLocked(q.offset)) *s = Submitted{now, q.capacity};
    recorder_.RequestSubmitted(recorder_device_, recorder::RequestOp::kReceive, q.capacity, now);
  }
}

// A transmit completes ok, failed (the driver refused the frame) or
// interrupted (the crash fenced it). A receive completes ok with a frame or
// interrupted; a buffer that expired unused completes nothing (it is posted
// again, a new submission).
void NetShadow::RecordCompletionsLocked(std::span<const runtime::Completion> done) {
  if (!recorder_.on() || done.empty()) return;
  const int64_t now = MonotonicNanos();
  for (const runtime::Completion& c : done) {
    const bool tx = runtime::RequestCookie::Decode(c.cookie).tag == kTxTag;
    if (!tx && c.status == 0 && (c.length == 0 || c.arg == kRxExpired)) continue;
    const Submitted* s = SubmittedLocked(runtime::RequestCookie::Decode(c.cookie).index);
    const int64_t latency = s != nullptr && s->time_ns != 0 ? now - s->time_ns : 0;
    recorder::RequestOutcome outcome = recorder::RequestOutcome::kOk;
    if (c.status == static_cast<int32_t>(Errc::kInterrupted)) {
      outcome = recorder::RequestOutcome::kInterrupted;
    } else if (c.status != 0) {
      outcome = recorder::RequestOutcome::kFailed;
    }
    const uint64_t size = tx ? (s != nullptr ? s->length : c.length) : c.length;
    recorder_.RequestCompleted(recorder_device_, tx ? recorder::RequestOp::kTransmit : recorder::RequestOp::kReceive,
                               size, latency, outcome, now);
  }
}

// ---------------- recovery hooks ----------------

Result<void> NetShadow::ResubmitRequests() {
  std::lock_guard lock(dp_mu_);
  if (!buffers_ready_) return {};
  PollLocked();  // the buffers the crash interrupted come back here
  // Armed before the shadow turns passive, so that the first frame the new
  // driver completes is stamped whichever thread handles it.
  first_rx_after_recovery_ns_ = 0;
  await_first_rx_ = true;
  PostRxLocked();
  return {};
}

void NetShadow::OnResumed() {}

// ---------------- factory ----------------

const shadows::SettingsSchema<NetShadowOptions>& NetSettings() {
  static const auto schema =
      shadows::SettingsSchema<NetShadowOptions>("net").Count("rx_buffers", &NetShadowOptions::rx_buffers);
  return schema;
}

Result<std::unique_ptr<shadows::Shadow>> CreateNetShadow(runtime::Host& host, const shadows::ShadowSettings& settings,
                                                         RecoveryMode mode) {
  const NetShadowOptions o = UMBRA_TRY(NetSettings().Parse(settings));
  auto s = NetShadow::Create(host, o, mode);
  if (!s) return std::unexpected(s.error());
  return std::unique_ptr<shadows::Shadow>(std::move(*s));
}

}  // namespace umbra::net
