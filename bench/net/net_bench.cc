// bench/net: transmit throughput through the network class, four modes in one
// run, and the recovery gap per fault type.
//
//   BM_Tx/mode/bytes: batches of 32 frames, items/s = frames/s. Every mode
//   runs the same loop — `while (done < 32) done += path.Transmit(rest)` —
//   over a TxPath with the same data path: the caller's own pool buffers, a
//   memcpy per frame, one submission per batch, completions polled after
//   each batch and waited for only when no buffer is free.
//     mode 0 in-process  — NicDriver linked into the host (sdk::InProcessRunner)
//     mode 1 isolated    — driver process, DriverHost::Submit/Poll, no shadow
//     mode 2 shadowed    — net::Interface of the net shadow (passive)
//     mode 3 restart-only — the same shadow class in RecoveryMode::kRestartOnly
//   BM_TxCompare/bytes: the four modes interleaved in one benchmark (turns
//   of at least 20 ms each, in turn), so that a shared machine's load falls on
//   all of them alike; counters give frames/s per mode, the ratios against
//   the in-process baseline and the passive shadow's own cost per frame
//   (shadowed − isolated, ns).
//   BM_RecoveryGap/signal/warm: a peer streams a frame every ~50 µs into the
//   NIC while the application receives through the shadow and transmits one
//   stamped frame back per turn; each of 30 kills is timed from the kill to
//   the first frame the application receives through the new driver
//   (rx_gap) and to the first frame stamped after the kill that reaches the
//   peer (tx_gap), median and p99; the RecoveryRecord splits the recovery
//   into detect (kill → noticed), isolate, restart (spawn + handshake +
//   probe), replay, resubmit (→ passive), and first_rx (passive → first
//   frame). warm = 1 uses DriverHostOptions::warm_standby.
//
// The emulated NIC transmits onto an in-process wire whose far end drops what
// it cannot queue, so the figures are the cost of the class path and the
// driver, not of a consumer.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <atomic>
#include <cstring>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "drivers/nic/nic_driver.h"
#include "drivers/sdk/in_process.h"
#include "base/clock.h"
#include "runtime/hw/nic/nic.h"
#include "runtime/hw/nic/wire.h"
#include "runtime/supervisor/supervisor.h"
#include "protocols/net/net_protocol.h"
#include "shadows/net/net_shadow.h"
#include "shadows/net/workloads/file_transfer.h"

namespace umbra::net {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;
constexpr size_t kBatch = 32;
constexpr uint64_t kPeerMac = 0x990000000002;

std::vector<std::byte> MakeFrame(size_t size) {
  std::vector<std::byte> f(size, std::byte{0x42});
  for (int i = 0; i < 6; ++i) f[i] = std::byte(kPeerMac >> (8 * i));
  f[12] = std::byte{0x88};
  f[13] = std::byte{0xB6};
  return f;
}

struct Device {
  std::unique_ptr<hw::nic::Nic> nic;
  std::unique_ptr<hw::nic::PeerEndpoint> peer;
  static Device Make() {
    Device d;
    auto ports = *hw::nic::WirePort::CreatePair();
    d.nic = std::move(*hw::nic::Nic::Create({.name = "nic0"}, std::move(ports.first)));
    d.peer = std::move(*hw::nic::PeerEndpoint::Create(std::move(ports.second)));
    d.nic->Start();
    return d;
  }
};

runtime::DriverHostOptions HostOptions(hw::nic::Nic* nic, const char* name) {
  runtime::DriverHostOptions o;
  o.device_name = name;
  o.driver_binary = UMBRA_NIC_DRIVER;
  o.heartbeat_period_ns = 20 * kMs;
  o.data = {.ring_entries = 256, .buffer_size = 2048, .buffer_count = 512};
  o.restart.budget = 1'000'000;
  o.restart.backoff_initial_ns = 0;
  o.hw = nic;
  return o;
}

// One way of handing frames to a NIC; every mode's loop goes through one.
class TxPath {
 public:
  virtual ~TxPath() = default;
  // Takes some of `frames` (possibly none when the device is full).
  virtual size_t Transmit(std::span<const FrameView> frames) = 0;
};

// Mode 0: the driver linked in, called directly; the caller plays the SDK loop.
class InProcessPath final : public TxPath {
 public:
  explicit InProcessPath(Device& dev) : run_(std::make_unique<drivers::NicDriver>(), RunnerOptions(dev)) {
    for (uint32_t i = 0; i < kBuffers; ++i) free_.push_back(i * kBufferSize);
  }
  bool Start() { return run_.Probe() && run_.Call(kSetUp, Encode(NetUpBody{.up = 1})); }

  size_t Transmit(std::span<const FrameView> frames) override {
    if (free_.empty()) {
      run_.PollInterrupt();  // TX-done frees ring space; the backlog completes
      Reclaim();
      if (free_.empty()) return 0;
    }
    size_t n = 0;
    batch_.clear();
    for (; n < frames.size() && !free_.empty(); ++n) {
      const uint32_t off = free_.back();
      free_.pop_back();
      std::memcpy(run_.pool() + off, frames[n].data(), frames[n].size());
      batch_.push_back(ipc::Descriptor{.id = ++next_id_,
                                       .op = kTx,
                                       .flags = 0,
                                       .status = 0,
                                       .offset = off,
                                       .length = static_cast<uint32_t>(frames[n].size()),
                                       .arg = 0});
    }
    run_.Submit(batch_);  // one submission per batch, as the other modes
    Reclaim();
    return n;
  }

 private:
  static constexpr uint32_t kBuffers = 512;
  static constexpr uint32_t kBufferSize = 2048;
  static sdk::InProcessRunner::Options RunnerOptions(Device& dev) {
    hw::Resources r = dev.nic->resources();
    sdk::InProcessRunner::Options o;
    o.pool_bytes = kBuffers * kBufferSize;
    o.hw = sdk::HwView{reinterpret_cast<std::byte*>(&dev.nic->registers()), hw::nic::kNicRegisterWindowSize,
                       dev.nic->dma(), dev.nic->dma_size()};
    o.hw_doorbell_fd = r.doorbell_fd;
    o.hw_interrupt_fd = r.interrupt_fd;
    return o;
  }
  void Reclaim() {
    for (const ipc::Descriptor& d : run_.completions()) free_.push_back(d.offset);
    run_.completions().clear();
  }

  sdk::InProcessRunner run_;
  std::vector<uint32_t> free_;
  uint64_t next_id_ = 0;
  std::vector<ipc::Descriptor> batch_;
};

// Mode 1: the driver process through DriverHost, no shadow: the shadow's data
// path without its bookkeeping.
class HostPath final : public TxPath {
 public:
  explicit HostPath(runtime::DriverHost& host) : host_(host), requests_(64), done_(256) {}
  bool Start() {
    host_.Start();
    if (!host_.WaitUntilRunning(10 * kSec) || !host_.Call(kSetUp, Encode(NetUpBody{.up = 1}), kSec)) return false;
    while (auto b = host_.AllocBuffer()) free_.push_back(*b);
    return true;
  }

  size_t Transmit(std::span<const FrameView> frames) override {
    if (free_.empty()) {
      Reclaim(host_.Poll(done_));
      if (free_.empty()) Reclaim(host_.Wait(done_, 2 * kMs));
      if (free_.empty()) return 0;
    }
    size_t n = 0;
    for (; n < frames.size() && n < requests_.size() && !free_.empty(); ++n) {
      const uint32_t off = free_.back();
      free_.pop_back();
      std::memcpy(host_.buffer(off), frames[n].data(), frames[n].size());
      requests_[n] = runtime::Request{.op = kTx,
                                      .offset = off,
                                      .length = static_cast<uint32_t>(frames[n].size()),
                                      .capacity = static_cast<uint32_t>(frames[n].size()),
                                      .cookie = off};
    }
    auto r = host_.Submit({requests_.data(), n});
    const size_t accepted = r ? *r : 0;
    for (size_t i = accepted; i < n; ++i) free_.push_back(requests_[i].offset);
    // A full submission ring: wait for the driver, as the shadow does.
    Reclaim(accepted > 0 ? host_.Poll(done_) : host_.Wait(done_, 2 * kMs));
    return accepted;
  }

 private:
  void Reclaim(size_t got) {
    for (size_t i = 0; i < got; ++i) free_.push_back(static_cast<uint32_t>(done_[i].cookie));
  }

  runtime::DriverHost& host_;  // the supervisor's; outlives the path
  std::vector<uint32_t> free_;
  std::vector<runtime::Request> requests_;
  std::vector<runtime::Completion> done_;
};

// Modes 2 and 3: the net shadow's net::Interface.
class ShadowPath final : public TxPath {
 public:
  ShadowPath(runtime::DriverHost& host, shadows::RecoveryMode mode)
      : shadow_(std::move(*NetShadow::Create(host, {}, mode))) {}
  ~ShadowPath() override { shadow_->Stop(); }
  bool Start() { return shadow_->Open(10 * kSec) && shadow_->Up(); }
  size_t Transmit(std::span<const FrameView> frames) override {
    auto r = shadow_->Transmit(frames);
    return r ? *r : 0;
  }

 private:
  std::unique_ptr<NetShadow> shadow_;  // the path's interface; stops its driver when the path goes
};

// The loop every mode runs: one batch of kBatch frames.
inline uint64_t SendBatch(TxPath& path, std::span<const FrameView> batch) {
  size_t done = 0;
  while (done < batch.size()) done += path.Transmit(batch.subspan(done));
  return done;
}

// The four modes, each on its own NIC; modes 1..3 under one supervisor.
struct Modes {
  std::array<Device, 4> devices;
  runtime::Supervisor sup;
  std::unique_ptr<InProcessPath> in_process;
  std::unique_ptr<HostPath> isolated;
  std::unique_ptr<ShadowPath> shadowed, restart_only;

  bool Start(uint32_t wanted) {
    for (auto& d : devices) d = Device::Make();
    bool ok = true;
    if ((wanted & 1) != 0) {
      in_process = std::make_unique<InProcessPath>(devices[0]);
      ok = ok && in_process->Start();
    }
    if ((wanted & 2) != 0) {
      isolated = std::make_unique<HostPath>(**sup.AddDevice(HostOptions(devices[1].nic.get(), "nic1")));
      ok = ok && isolated->Start();
    }
    if ((wanted & 4) != 0) {
      shadowed = std::make_unique<ShadowPath>(**sup.AddDevice(HostOptions(devices[2].nic.get(), "nic2")),
                                              shadows::RecoveryMode::kShadow);
      ok = ok && shadowed->Start();
    }
    if ((wanted & 8) != 0) {
      restart_only = std::make_unique<ShadowPath>(**sup.AddDevice(HostOptions(devices[3].nic.get(), "nic3")),
                                                  shadows::RecoveryMode::kRestartOnly);
      ok = ok && restart_only->Start();
    }
    return ok;
  }
  TxPath* path(int mode) {
    switch (mode) {
      case 0: return in_process.get();
      case 1: return isolated.get();
      case 2: return shadowed.get();
      case 3: return restart_only.get();
    }
    return nullptr;
  }
  ~Modes() {
    shadowed.reset();
    restart_only.reset();
    sup.Stop();
    in_process.reset();
    for (auto& d : devices) {
      if (d.nic) d.nic->Stop();
    }
  }
};

void BM_Tx(benchmark::State& state) {
  const int mode = static_cast<int>(state.range(0));
  const auto frame = MakeFrame(static_cast<size_t>(state.range(1)));
  Modes modes;
  if (!modes.Start(1u << mode)) {
    state.SkipWithError("mode did not start");
    return;
  }
  std::vector<FrameView> batch(kBatch, FrameView(frame));
  TxPath& path = *modes.path(mode);
  uint64_t sent = 0;
  for (auto _ : state) sent += SendBatch(path, batch);
  state.SetItemsProcessed(static_cast<int64_t>(sent));
}
BENCHMARK(BM_Tx)->ArgsProduct({{0, 1, 2, 3}, {64, 1500}})->ArgNames({"mode", "bytes"})->UseRealTime();

// The four modes in turn, `kRound` batches each, for as long as the library
// runs the benchmark; reports each mode's rate and the ratios.
void BM_TxCompare(benchmark::State& state) {
  constexpr int kRound = 64;
  constexpr int64_t kRoundNs = 20 * kMs;
  const auto frame = MakeFrame(static_cast<size_t>(state.range(0)));
  Modes modes;
  if (!modes.Start(0xF)) {
    state.SkipWithError("a mode did not start");
    return;
  }
  std::vector<FrameView> batch(kBatch, FrameView(frame));
  std::array<int64_t, 4> ns{};
  std::array<uint64_t, 4> frames{};
  for (auto _ : state) {
    for (int mode = 0; mode < 4; ++mode) {
      TxPath& path = *modes.path(mode);
      const int64_t t0 = MonotonicNanos();
      int64_t now = t0;
      // At least kRoundNs per turn: a mode's idle threads (its device's
      // thread, its driver) take tens of microseconds to wake at the start
      // of a turn, which must not weigh on the comparison.
      while (now - t0 < kRoundNs) {
        for (int i = 0; i < kRound; ++i) frames[mode] += SendBatch(path, batch);
        now = MonotonicNanos();
      }
      ns[mode] += now - t0;
    }
  }
  std::array<double, 4> rate{};
  for (int mode = 0; mode < 4; ++mode) {
    rate[mode] = ns[mode] > 0 ? static_cast<double>(frames[mode]) * 1e9 / static_cast<double>(ns[mode]) : 0;
  }
  state.counters["inproc_fps"] = rate[0];
  state.counters["isolated_fps"] = rate[1];
  state.counters["shadow_fps"] = rate[2];
  state.counters["restart_only_fps"] = rate[3];
  state.counters["shadow_vs_inproc"] = rate[0] > 0 ? rate[2] / rate[0] : 0;
  state.counters["isolated_vs_inproc"] = rate[0] > 0 ? rate[1] / rate[0] : 0;
  state.counters["shadow_cost_ns"] = rate[1] > 0 && rate[2] > 0 ? 1e9 / rate[2] - 1e9 / rate[1] : 0;
}
BENCHMARK(BM_TxCompare)->Arg(64)->Arg(1500)->ArgName("bytes")->UseRealTime()->Unit(benchmark::kMillisecond);

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(static_cast<double>(v.size()) * p))];
}

// Kills the driver `kRounds` times under a steady stream and times each gap.
void BM_RecoveryGap(benchmark::State& state) {
  constexpr int kRounds = 30;
  const int sig = static_cast<int>(state.range(0));
  Device dev = Device::Make();
  runtime::Supervisor sup;
  runtime::DriverHostOptions ho = HostOptions(dev.nic.get(), "nic0");
  ho.warm_standby = state.range(1) != 0;
  runtime::DriverHost& host = **sup.AddDevice(std::move(ho));
  auto shadow = std::move(*NetShadow::Create(host, {}));
  if (!shadow->Open(10 * kSec) || !shadow->Up()) {
    state.SkipWithError("shadow did not open");
    return;
  }
  std::atomic<bool> stop{false};
  std::atomic<int64_t> watch_after{INT64_MAX};  // frames stamped after this count for tx_gap
  std::atomic<int64_t> tx_first{0};
  // The peer: a frame every ~50 µs toward the NIC.
  std::thread streamer([&] {
    std::vector<std::byte> f = MakeFrame(64);
    const uint64_t mac = shadow->Mac();
    for (int i = 0; i < 6; ++i) f[i] = std::byte(mac >> (8 * i));
    while (!stop) {
      (void)dev.peer->Send(f);
      usleep(50);
    }
  });
  // The peer's receiver: when did the first frame sent after the kill arrive.
  std::thread collector([&] {
    std::vector<std::byte> buf(2048);
    while (!stop) {
      auto n = dev.peer->Receive(buf, 10 * kMs);
      if (!n || *n < 22) continue;
      int64_t stamp;
      std::memcpy(&stamp, buf.data() + 14, sizeof stamp);
      if (stamp > watch_after.load() && tx_first.load() == 0) tx_first = MonotonicNanos();
    }
  });
  // The application: receives, and sends one stamped frame per turn.
  std::thread app([&] {
    std::array<FrameView, 32> in;
    std::vector<std::byte> out = MakeFrame(64);
    const FrameView view(out);
    while (!stop) {
      (void)shadow->Receive(in, 1 * kMs);
      const int64_t now = MonotonicNanos();
      std::memcpy(out.data() + 14, &now, sizeof now);
      (void)shadow->Transmit({&view, 1});
    }
  });
  std::vector<double> rx_gap, tx_gap, detect, isolate, restart, replay, resubmit, first_rx;
  auto us = [](int64_t ns) { return static_cast<double>(ns) / 1000.0; };
  for (auto _ : state) {
    for (int i = 0; i < kRounds; ++i) {
      // A warm standby is spawned 50 ms after a recovery: leave it time to
      // finish its exec and Hello, as it would have between real faults.
      usleep(ho.warm_standby ? 100'000 : 30'000);
      const size_t before = shadow->recoveries().size();
      tx_first = 0;
      const int64_t t0 = MonotonicNanos();
      watch_after = t0;
      host.Kill(sig);
      const int64_t deadline = t0 + 5 * kSec;
      while (shadow->recoveries().size() == before && MonotonicNanos() < deadline) usleep(50);
      (void)shadow->WaitUntilPassive(5 * kSec);
      while ((shadow->first_rx_after_recovery_ns() == 0 || tx_first == 0) && MonotonicNanos() < deadline) {
        usleep(20);
      }
      const auto records = shadow->recoveries();
      if (records.size() == before) continue;
      const shadows::RecoveryRecord& r = records.back();
      const int64_t t_rx = shadow->first_rx_after_recovery_ns();
      if (t_rx > t0) rx_gap.push_back(us(t_rx - t0));
      if (tx_first > t0) tx_gap.push_back(us(tx_first - t0));
      detect.push_back(us(r.detected_ns - t0));
      isolate.push_back(us(r.isolated_ns - r.detected_ns));
      restart.push_back(us(r.restarted_ns - r.isolated_ns));
      replay.push_back(us(r.replayed_ns - r.restarted_ns));
      resubmit.push_back(us(r.passive_ns - r.replayed_ns));
      if (t_rx > r.passive_ns) first_rx.push_back(us(t_rx - r.passive_ns));
    }
  }
  stop = true;
  app.join();
  collector.join();
  streamer.join();
  state.counters["rx_gap_median_us"] = Percentile(rx_gap, 0.5);
  state.counters["rx_gap_p99_us"] = Percentile(rx_gap, 0.99);
  state.counters["tx_gap_median_us"] = Percentile(tx_gap, 0.5);
  state.counters["tx_gap_p99_us"] = Percentile(tx_gap, 0.99);
  state.counters["detect_us"] = Percentile(detect, 0.5);
  state.counters["isolate_us"] = Percentile(isolate, 0.5);
  state.counters["restart_us"] = Percentile(restart, 0.5);
  state.counters["replay_us"] = Percentile(replay, 0.5);
  state.counters["resubmit_us"] = Percentile(resubmit, 0.5);
  state.counters["first_rx_us"] = Percentile(first_rx, 0.5);
  state.counters["samples"] = static_cast<double>(rx_gap.size());
  shadow->Stop();
}
BENCHMARK(BM_RecoveryGap)
    ->ArgsProduct({{SIGSEGV, SIGABRT, SIGKILL, SIGSTOP}, {0, 1}})
    ->ArgNames({"signal", "warm"})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace umbra::net

BENCHMARK_MAIN();
