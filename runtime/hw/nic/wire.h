// The in-process wire: a cable with two ports. Each port is a NicBackend; a
// NIC owns one, and the other end is either another NIC or a PeerEndpoint —
// the "rest of the network" that tests, the file-transfer workload and the
// demo use to send and receive frames.
//
//   auto ports = UMBRA_TRY(WirePort::CreatePair());
//   auto nic = UMBRA_TRY(Nic::Create({}, std::move(ports.first)));
//   auto peer = UMBRA_TRY(PeerEndpoint::Create(std::move(ports.second)));
//   UMBRA_TRY(peer->Send(frame));                           // → the NIC's RX ring
//   size_t n = UMBRA_TRY(peer->Receive(buffer, 10'000'000)); // ← the NIC's TX ring
//
// Thread safety: a port may transmit from one thread while the other port
// transmits from another; delivery into a port's sink is serialised by that
// port's mutex, which Attach also takes. PeerEndpoint is fully thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "base/result.h"
#include "runtime/hw/nic/backend.h"
#include "runtime/hw/nic/nic_regs.h"

namespace umbra::hw::nic {

class WirePort final : public NicBackend {
 public:
  // Two ports joined by one cable.
  static Result<std::pair<std::unique_ptr<WirePort>, std::unique_ptr<WirePort>>> CreatePair();

  void Attach(FrameSink* sink) override;
  void Transmit(std::span<const FrameView> frames) override;

  // Plugs the cable in or pulls it out: both ends are told. While the cable
  // is out, transmitted frames are dropped.
  void SetLink(LinkState state);
  // Frames this port sent that found no sink or no cable.
  uint64_t dropped() const;

 private:
  struct Cable;
  WirePort(std::shared_ptr<Cable> cable, int side) : cable_(std::move(cable)), side_(side) {}

  std::shared_ptr<Cable> cable_;  // shared by both ports: lives until both are gone
  const int side_;                // 0 or 1
};

struct PeerOptions {
  size_t queue_frames = 256;            // frames buffered for Receive
  size_t max_frame = kNicMaxFrameSize;  // bigger frames are refused / dropped
};

class PeerEndpoint final : private FrameSink {
 public:
  static Result<std::unique_ptr<PeerEndpoint>> Create(std::unique_ptr<NicBackend> port, PeerOptions options = {});
  ~PeerEndpoint();
  PeerEndpoint(const PeerEndpoint&) = delete;
  PeerEndpoint& operator=(const PeerEndpoint&) = delete;

  // Puts one frame (or a batch) on the wire toward the other end.
  Result<void> Send(FrameView frame);
  Result<void> SendBatch(std::span<const FrameView> frames);

  // Copies the oldest received frame into `out` and returns its length,
  // waiting up to `timeout_ns` (negative: forever). kTimeout when none came;
  // kInvalidArgument when `out` is too small (the frame stays queued).
  Result<size_t> Receive(std::span<std::byte> out, int64_t timeout_ns);
  // Hands up to `max` queued frames to `fn(FrameView)` without waiting;
  // returns how many. The views are valid only during the call.
  template <class Fn>
  size_t Drain(size_t max, Fn&& fn);

  LinkState link() const;
  uint64_t received() const;
  uint64_t dropped() const;  // arrived while the queue was full
  NicBackend& port() const { return *port_; }

 private:
  PeerEndpoint(std::unique_ptr<NicBackend> port, PeerOptions options);

  void DeliverFrames(std::span<const FrameView> frames) override;
  void LinkChanged(LinkState state) override;

  const std::unique_ptr<NicBackend> port_;  // our end of the cable; detached in the destructor
  const PeerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable arrived_;
  std::vector<std::byte> storage_;  // queue_frames slots of max_frame bytes, allocated once
  std::vector<uint32_t> lengths_;
  size_t head_ = 0;   // oldest queued slot
  size_t count_ = 0;  // queued frames
  uint64_t received_ = 0;
  uint64_t dropped_ = 0;
  LinkState link_ = LinkState::kUp;
};

template <class Fn>
size_t PeerEndpoint::Drain(size_t max, Fn&& fn) {
  std::lock_guard lock(mu_);
  size_t n = 0;
  while (n < max && count_ > 0) {
    fn(FrameView(storage_.data() + head_ * options_.max_frame, lengths_[head_]));
    head_ = head_ + 1 == options_.queue_frames ? 0 : head_ + 1;
    --count_;
    ++n;
  }
  return n;
}

}  // namespace umbra::hw::nic
