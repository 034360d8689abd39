// TapBackend: connects the emulated NIC to a Linux TAP interface, so the host's
// network stack talks to the NIC's driver with real traffic. Frames the NIC
// transmits are written to the TAP fd (Linux receives them on the interface);
// frames Linux sends out of the interface are read by the backend's thread
// and delivered into the NIC's RX ring.
//
//   auto tap = UMBRA_TRY(TapBackend::Create({.name = "umbra0",
//                                            .ipv4_address = "10.77.0.1",
//                                            .prefix_length = 24}));
//   auto nic = UMBRA_TRY(Nic::Create({}, std::move(tap)));
//
// Needs CAP_NET_ADMIN and /dev/net/tun; Create fails with kUnavailable (and a
// message saying which) when the machine cannot create the interface. The
// interface disappears when the backend is destroyed.
//
// Thread safety: Transmit from one thread (the NIC's hardware thread) while
// the reader thread delivers; Attach synchronises with delivery.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/result.h"
#include "base/unique_fd.h"
#include "runtime/hw/nic/backend.h"
#include "runtime/ipc/event_fd.h"

namespace umbra::hw::nic {

struct TapOptions {
  std::string name = "umbra0";  // interface name, at most 15 characters
  // When set, the interface is moved into this existing network namespace
  // (`ip netns add <name>`) before it is configured.
  std::string netns;
  std::string ipv4_address;  // Linux's side of the link; empty: no address
  int prefix_length = 24;
  uint32_t mtu = 1500;
};

class TapBackend final : public NicBackend {
 public:
  static Result<std::unique_ptr<TapBackend>> Create(TapOptions options);
  ~TapBackend() override;
  TapBackend(const TapBackend&) = delete;
  TapBackend& operator=(const TapBackend&) = delete;

  void Attach(FrameSink* sink) override;
  void Transmit(std::span<const FrameView> frames) override;

  const std::string& name() const { return options_.name; }
  uint64_t tx_dropped() const { return tx_dropped_.load(std::memory_order_relaxed); }
  uint64_t rx_frames() const { return rx_frames_.load(std::memory_order_relaxed); }
  // The interface disappeared (deleted, or its namespace went away); the
  // backend no longer receives, and transmits are dropped.
  bool interface_gone() const { return interface_gone_.load(std::memory_order_relaxed); }

 private:
  TapBackend(TapOptions options, UniqueFd fd, ipc::EventFd wake)
      : options_(std::move(options)), fd_(std::move(fd)), wake_(std::move(wake)) {}

  void ReadLoop();
  void Deliver(std::span<const FrameView> frames);

  const TapOptions options_;
  const UniqueFd fd_;        // the TAP queue; closing it deletes the interface
  const ipc::EventFd wake_;  // tells the reader thread to exit

  std::mutex mu_;
  FrameSink* sink_ = nullptr;  // guarded by mu_; not owned, detaches before it dies

  std::atomic<uint64_t> tx_dropped_{0};
  std::atomic<uint64_t> rx_frames_{0};
  std::atomic<bool> interface_gone_{false};
  std::thread reader_;  // reads the TAP fd; joined in the destructor
};

}  // namespace umbra::hw::nic
