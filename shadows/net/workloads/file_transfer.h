// The "file-transfer" workload: a reliable transfer over a lossy frame path.
//
// A small go-back-N protocol over raw Ethernet frames (ethertype 0x88B5): the
// sender keeps up to `window` DATA frames in flight, the receiver accepts them
// in order and answers each batch with a cumulative ACK; no progress for
// `rto_ns` resends from the oldest unacknowledged frame. A FIN carrying the
// length and FNV-1a checksum ends the transfer. Loss (a driver restarting, a
// dropped transmit) costs time, never data.
//
// Either end runs over a FramePort: a net::Interface (the NIC side, through
// its shadow) or a PeerEndpoint (the other end of the in-process wire). The
// campaign engine and the demo use it as the "file-transfer" workload.
//
//   InterfacePort nic_side(*shadow);
//   PeerPort peer_side(*peer, kPeerMac);
//   std::thread rx([&] { got = ReceiveFile(peer_side, {}); });
//   auto sent = SendFile(nic_side, kPeerMac, data, {});
//   rx.join();  EXPECT_EQ(got->checksum, Fnv1a(data));
//
// Thread safety: a port is used by one thread; sender and receiver run on
// different threads (or processes).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/result.h"
#include "shadows/net/interface.h"

namespace umbra::hw::nic {
class PeerEndpoint;
}

namespace umbra::net::workloads {

inline constexpr uint16_t kFileTransferEthertype = 0x88B5;

// One end of a frame path.
class FramePort {
 public:
  virtual ~FramePort() = default;
  virtual uint64_t mac() const = 0;
  virtual Result<size_t> Send(std::span<const FrameView> frames) = 0;
  // Views valid until the next Receive.
  virtual Result<size_t> Receive(std::span<FrameView> out, int64_t timeout_ns) = 0;
};

// A net::Interface as a port (not owned).
class InterfacePort final : public FramePort {
 public:
  explicit InterfacePort(Interface& nic) : nic_(nic) {}
  uint64_t mac() const override { return nic_.Mac(); }
  Result<size_t> Send(std::span<const FrameView> frames) override { return nic_.Transmit(frames); }
  Result<size_t> Receive(std::span<FrameView> out, int64_t timeout_ns) override {
    return nic_.Receive(out, timeout_ns);
  }

 private:
  Interface& nic_;  // the application's interface; outlives the port
};

// A PeerEndpoint as a port, with its own frame storage (not owned).
class PeerPort final : public FramePort {
 public:
  PeerPort(hw::nic::PeerEndpoint& peer, uint64_t mac);
  uint64_t mac() const override { return mac_; }
  Result<size_t> Send(std::span<const FrameView> frames) override;
  Result<size_t> Receive(std::span<FrameView> out, int64_t timeout_ns) override;

 private:
  static constexpr size_t kSlots = 64;
  static constexpr size_t kSlotSize = 9216;
  hw::nic::PeerEndpoint& peer_;  // the wire's far end; outlives the port
  const uint64_t mac_;
  std::vector<std::byte> storage_;  // kSlots frames, allocated once
};

struct FileTransferOptions {
  uint32_t chunk = 1024;                 // payload bytes per DATA frame
  uint32_t window = 32;                  // DATA frames in flight
  int64_t rto_ns = 20'000'000;           // no ACK progress for this long: go back
  int64_t timeout_ns = 120'000'000'000;  // the whole transfer
  int64_t linger_ns = 100'000'000;       // receiver: keep acking FINs this long
};

struct FileTransferStats {
  uint64_t bytes = 0;
  uint64_t checksum = 0;  // FNV-1a 64 of the bytes
  uint64_t frames_sent = 0;
  uint64_t retransmits = 0;  // go-back events
  int64_t elapsed_ns = 0;
};

uint64_t Fnv1a(std::span<const std::byte> data, uint64_t hash = 0xcbf29ce484222325ull);

// Sends `data` to `peer_mac`; returns when the FIN is acknowledged.
Result<FileTransferStats> SendFile(FramePort& port, uint64_t peer_mac, std::span<const std::byte> data,
                                   const FileTransferOptions& options);

// Receives one file; `out` (if given) gets the bytes. The checksum in the
// result is computed over what arrived; a FIN whose checksum disagrees is an
// error (kProtocol).
Result<FileTransferStats> ReceiveFile(FramePort& port, const FileTransferOptions& options,
                                      std::vector<std::byte>* out = nullptr);

}  // namespace umbra::net::workloads
