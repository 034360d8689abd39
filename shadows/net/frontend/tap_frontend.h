// TapFrontend: a net::Interface as a Linux network interface (a TAP), so
// that ping, curl and iperf3 send their frames through the shadowed driver:
//
//   Linux stack ─ TAP ─ TapFrontend ─ net::Interface (shadow) ─ driver ─ NIC ─ its backend
//
// Frames Linux sends out of the TAP are handed to Interface::Transmit; frames
// Interface::Receive returns are written into the TAP (Linux receives them).
// The interface is put in promiscuous mode, as a bridge port is: the NIC
// carries frames for the TAP's MAC, not its own. One pump thread does both
// directions (net::Interface wants one thread for Transmit and Receive); a
// frame that cannot be handed on at once is dropped, as a NIC does — TCP
// sees loss at most.
//
//   auto tap = UMBRA_TRY(TapFrontend::Create(*shadow, {.name = "umf-nic0", .netns = "app",
//                                                     .ipv4_address = "10.77.0.1"}));
//   // ip netns exec app ping 10.77.0.2
//
// Needs CAP_NET_ADMIN and /dev/net/tun (kUnavailable otherwise).
//
// Thread safety: Create and the destructor from one thread.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "shadows/net/interface.h"

namespace umbra::net {

struct TapFrontendOptions {
  std::string name;          // the interface's name, 1..15 characters
  std::string netns;         // an existing namespace to move it into; empty: this one
  std::string ipv4_address;  // empty: no address
  int prefix_length = 24;
  uint32_t mtu = 1500;
};

// Frames moved since the frontend started.
struct TapFrontendStats {
  uint64_t to_device = 0;    // Linux → Interface::Transmit
  uint64_t from_device = 0;  // Interface::Receive → Linux
  uint64_t dropped = 0;      // not taken by the interface in time
};

class TapFrontend {
 public:
  static Result<std::unique_ptr<TapFrontend>> Create(Interface& nic, TapFrontendOptions options);
  ~TapFrontend();
  TapFrontend(const TapFrontend&) = delete;
  TapFrontend& operator=(const TapFrontend&) = delete;

  const std::string& name() const;
  TapFrontendStats stats() const;

  class Impl;

 private:
  explicit TapFrontend(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A network namespace, made when missing; deleted when this goes if it made it.
class Netns {
 public:
  static Result<std::unique_ptr<Netns>> Ensure(std::string name);
  ~Netns();
  const std::string& name() const { return name_; }

 private:
  Netns(std::string name, bool made) : name_(std::move(name)), made_(made) {}
  const std::string name_;
  const bool made_;
};

// Moves interface `name` into namespace `netns`, gives it `cidr` (may be
// empty) and brings it and the namespace's loopback up (`ip`).
Result<void> MoveInterface(const std::string& name, const std::string& netns, const std::string& cidr);

}  // namespace umbra::net
