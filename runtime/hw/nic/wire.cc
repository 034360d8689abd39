#include "runtime/hw/nic/wire.h"

#include <atomic>
#include <cstring>

namespace umbra::hw::nic {

// The cable: one sink slot per side, each guarded by its own mutex so that
// delivering into side 1 never waits for side 0.
struct WirePort::Cable {
  struct End {
    std::mutex mu;
    FrameSink* sink = nullptr;  // not owned: the sink detaches before it dies
  };
  End ends[2];
  std::atomic<LinkState> link{LinkState::kUp};
  std::atomic<uint64_t> dropped[2] = {0, 0};  // per transmitting side
};

Result<std::pair<std::unique_ptr<WirePort>, std::unique_ptr<WirePort>>> WirePort::CreatePair() {
  auto cable = std::make_shared<Cable>();
  std::unique_ptr<WirePort> a(new WirePort(cable, 0));
  std::unique_ptr<WirePort> b(new WirePort(cable, 1));
  return std::pair(std::move(a), std::move(b));
}

void WirePort::Attach(FrameSink* sink) {
  Cable::End& end = cable_->ends[side_];
  std::lock_guard lock(end.mu);
  end.sink = sink;
}

void WirePort::Transmit(std::span<const FrameView> frames) {
  if (cable_->link.load(std::memory_order_relaxed) == LinkState::kUp) {
    Cable::End& other = cable_->ends[1 - side_];
    std::lock_guard lock(other.mu);
    if (other.sink != nullptr) {
      other.sink->DeliverFrames(frames);
      return;
    }
  }
  cable_->dropped[side_].fetch_add(frames.size(), std::memory_order_relaxed);
}

void WirePort::SetLink(LinkState state) {
  if (cable_->link.exchange(state) == state) return;
  for (Cable::End& end : cable_->ends) {
    std::lock_guard lock(end.mu);
    if (end.sink != nullptr) end.sink->LinkChanged(state);
  }
}

uint64_t WirePort::dropped() const { return cable_->dropped[side_].load(std::memory_order_relaxed); }

// ---------------------------------------------------------------------------

Result<std::unique_ptr<PeerEndpoint>> PeerEndpoint::Create(std::unique_ptr<NicBackend> port, PeerOptions options) {
  if (!port) return Fail(Errc::kInvalidArgument, "peer endpoint: no port");
  if (options.queue_frames == 0 || options.max_frame < kNicEthHeaderSize || options.max_frame > 65535) {
    return Fail(Errc::kInvalidArgument, "peer endpoint: queue_frames must be > 0 and max_frame "
                                        "between 14 and 65535 bytes");
  }
  std::unique_ptr<PeerEndpoint> peer(new PeerEndpoint(std::move(port), options));
  peer->port_->Attach(peer.get());
  return peer;
}

PeerEndpoint::PeerEndpoint(std::unique_ptr<NicBackend> port, PeerOptions options)
    : port_(std::move(port)), options_(options), storage_(options.queue_frames * options.max_frame),
      lengths_(options.queue_frames) {}

PeerEndpoint::~PeerEndpoint() { port_->Attach(nullptr); }

Result<void> PeerEndpoint::Send(FrameView frame) { return SendBatch({&frame, 1}); }

Result<void> PeerEndpoint::SendBatch(std::span<const FrameView> frames) {
  for (FrameView f : frames) {
    if (f.size() < kNicEthHeaderSize || f.size() > options_.max_frame) {
      return Fail(Errc::kInvalidArgument, "peer endpoint: frame of " + std::to_string(f.size()) + " bytes");
    }
  }
  port_->Transmit(frames);
  return {};
}

Result<size_t> PeerEndpoint::Receive(std::span<std::byte> out, int64_t timeout_ns) {
  std::unique_lock lock(mu_);
  auto ready = [this] { return count_ > 0; };
  if (timeout_ns < 0) {
    arrived_.wait(lock, ready);
  } else if (!arrived_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), ready)) {
    return Fail(Errc::kTimeout, "peer endpoint: no frame within the timeout");
  }
  const size_t length = lengths_[head_];
  if (out.size() < length) {
    return Fail(Errc::kInvalidArgument,
                "peer endpoint: a " + std::to_string(length) + "-byte frame does not fit the buffer");
  }
  std::memcpy(out.data(), storage_.data() + head_ * options_.max_frame, length);
  head_ = head_ + 1 == options_.queue_frames ? 0 : head_ + 1;
  --count_;
  return length;
}

LinkState PeerEndpoint::link() const {
  std::lock_guard lock(mu_);
  return link_;
}

uint64_t PeerEndpoint::received() const {
  std::lock_guard lock(mu_);
  return received_;
}

uint64_t PeerEndpoint::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

void PeerEndpoint::DeliverFrames(std::span<const FrameView> frames) {
  std::lock_guard lock(mu_);
  for (FrameView f : frames) {
    if (count_ == options_.queue_frames || f.size() > options_.max_frame) {
      ++dropped_;
      continue;
    }
    size_t slot = head_ + count_;
    if (slot >= options_.queue_frames) slot -= options_.queue_frames;
    std::memcpy(storage_.data() + slot * options_.max_frame, f.data(), f.size());
    lengths_[slot] = static_cast<uint32_t>(f.size());
    ++count_;
    ++received_;
  }
  arrived_.notify_all();
}

void PeerEndpoint::LinkChanged(LinkState state) {
  std::lock_guard lock(mu_);
  link_ = state;
}

}  // namespace umbra::hw::nic
