// net::Interface: what an application uses to talk to a network device.
//
// Implemented by the net shadow (NetShadow: the device's driver runs isolated
// and its crashes are hidden) and, for comparison, by thinner wrappers in the
// benchmarks. Frames are whole Ethernet frames (destination MAC first, no FCS).
//
//   net::Interface& nic = *shadow;
//   UMBRA_TRY(nic.Open(5'000'000'000));
//   UMBRA_TRY(nic.SetRxMode({.promiscuous = true}));
//   UMBRA_TRY(nic.Up());
//   size_t sent = UMBRA_TRY(nic.Transmit(frames));        // batched
//   std::array<net::FrameView, 32> in;
//   size_t got = UMBRA_TRY(nic.Receive(in, 10'000'000));  // views valid until the next Receive
//
// Errors: kDeviceFailed once the device is given up on; kInvalidArgument for
// a bad value (the setting is not changed); kUnavailable only in the
// restart-only comparison mode while the driver restarts.
//
// Thread safety: one application thread does Transmit and Receive; the
// configuration calls and the accessors may be made from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"

namespace umbra::net {

using FrameView = std::span<const std::byte>;

struct RxMode {
  bool promiscuous = false;    // every frame on the wire
  bool all_multicast = false;  // every multicast frame
  bool operator==(const RxMode&) const = default;
};

// The interface's own counters: monotonic for the life of the interface,
// whatever happens to the driver underneath.
struct NetStats {
  uint64_t tx_frames = 0;  // frames handed to a driver
  uint64_t tx_bytes = 0;
  uint64_t tx_dropped = 0;  // accepted from the application but lost (driver down, link down)
  uint64_t rx_frames = 0;   // frames delivered to the application
  uint64_t rx_bytes = 0;
  uint64_t recoveries = 0;  // driver recoveries the interface went through
};

class Interface {
 public:
  virtual ~Interface() = default;

  // Brings the device's driver up (not the link: see Up).
  virtual Result<void> Open(int64_t timeout_ns) = 0;
  virtual Result<void> Up() = 0;
  virtual Result<void> Down() = 0;

  // Hands frames to the device; returns how many were taken (fewer when the
  // device's queues are full: retry the rest).
  virtual Result<size_t> Transmit(std::span<const FrameView> frames) = 0;
  // Fills `out` with received frames, waiting up to `timeout_ns` for the
  // first; returns how many (0 on timeout). The views stay valid until the
  // next Receive call.
  virtual Result<size_t> Receive(std::span<FrameView> out, int64_t timeout_ns) = 0;

  virtual Result<void> SetMac(uint64_t mac) = 0;  // byte 0 in bits 0..7
  virtual uint64_t Mac() const = 0;
  virtual Result<void> SetMtu(uint32_t mtu) = 0;
  virtual uint32_t Mtu() const = 0;
  virtual Result<void> SetRxMode(RxMode mode) = 0;
  virtual Result<void> SetMulticast(std::span<const uint64_t> addresses) = 0;
  virtual NetStats Stats() const = 0;
  virtual bool LinkUp() = 0;
};

}  // namespace umbra::net
