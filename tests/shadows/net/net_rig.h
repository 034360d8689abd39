// A NIC on an in-process wire, its driver in a real process, and the net
// shadow in front of it: what every net test starts from.
#pragma once

#include <unistd.h>

#include <memory>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "runtime/hw/nic/nic.h"
#include "runtime/hw/nic/wire.h"
#include "runtime/supervisor/supervisor.h"
#include "shadows/net/net_shadow.h"

namespace umbra::net::testing {

inline constexpr int64_t kMs = 1'000'000;
inline constexpr int64_t kSec = 1'000'000'000;
inline constexpr uint64_t kPeerMac = 0x990000000002;  // 02:00:00:00:00:99

inline runtime::DriverHostOptions NicHostOptions(hw::nic::Nic* nic, const char* name = "nic0") {
  runtime::DriverHostOptions o;
  o.device_name = name;
  o.device_class = "net";
  o.compatible = "umbra,e1000-emu";
  o.driver_binary = UMBRA_NIC_DRIVER;
  o.heartbeat_period_ns = 20 * kMs;
  o.data = {.ring_entries = 256, .buffer_size = 2048, .buffer_count = 256};
  o.restart.budget = 100000;
  o.restart.backoff_initial_ns = 0;
  o.hw = nic;
  return o;
}

// Members are declared so that they are destroyed in a safe order: the
// shadow (stops the driver) before the supervisor, the NIC last.
struct NetRig {
  std::unique_ptr<hw::nic::Nic> nic;
  std::unique_ptr<hw::nic::PeerEndpoint> peer;
  runtime::Supervisor sup;
  runtime::DriverHost* host = nullptr;
  std::unique_ptr<NetShadow> shadow;

  // `open`: Open() the shadow as an application would first; without it the
  // shadow is only started, as a machine starts it.
  void Build(shadows::RecoveryMode mode = shadows::RecoveryMode::kShadow,
             std::function<void(runtime::DriverHostOptions&)> tweak = {}, bool open = true) {
    auto ports = hw::nic::WirePort::CreatePair();
    ASSERT_TRUE(ports.has_value());
    auto n = hw::nic::Nic::Create({.name = "nic0"}, std::move(ports->first));
    ASSERT_TRUE(n.has_value()) << n.error().ToString();
    nic = std::move(*n);
    auto p = hw::nic::PeerEndpoint::Create(std::move(ports->second), {.queue_frames = 1024});
    ASSERT_TRUE(p.has_value());
    peer = std::move(*p);
    nic->Start();
    auto o = NicHostOptions(nic.get());
    if (tweak) tweak(o);
    auto h = sup.AddDevice(std::move(o));
    ASSERT_TRUE(h.has_value()) << h.error().ToString();
    host = *h;
    auto s = NetShadow::Create(*host, {}, mode);
    ASSERT_TRUE(s.has_value());
    shadow = std::move(*s);
    if (!open) {
      shadow->Start();
      ASSERT_TRUE(shadow->WaitUntilPassive(10 * kSec).has_value());
      return;
    }
    auto opened = shadow->Open(10 * kSec);
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  }

  // Kills the driver and waits until the shadow recovered from it.
  void KillAndRecover(int sig) {
    const size_t before = shadow->recoveries().size();
    host->Kill(sig);
    const int64_t deadline = MonotonicNanos() + 10 * kSec;
    while (shadow->recoveries().size() == before && MonotonicNanos() < deadline) usleep(100);
    ASSERT_GT(shadow->recoveries().size(), before) << "the fault was noticed";
    auto r = shadow->WaitUntilPassive(10 * kSec);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
  }

  ~NetRig() {
    if (shadow) shadow->Stop();
    shadow.reset();
    sup.Stop();
    if (nic) nic->Stop();
  }
};

}  // namespace umbra::net::testing
