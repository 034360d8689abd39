// bench/net: transmit throughput through the network class, four modes in one
// run, and the recovery gap per fault type.
//
//   BM_Tx/<mode>/<frame bytes>: batches of 32 frames; items/s = frames/s.
//     mode 0 in-process  — NicDriver linked into the host (sdk::InProcessRunner)
//     mode 1 isolated    — driver process, DriverHost::Submit directly, no shadow
//     mode 2 shadowed    — net::Interface of the net shadow (passive)
//     mode 3 restart-only — the same shadow class in RecoveryMode::kRestartOnly
//   BM_RecoveryGap/<signal>: kill the driver under a running file transfer
//     into the NIC; gap = kill → first frame delivered by the new driver.
//
// The emulated NIC transmits onto an in-process wire whose far end drops what
// it cannot queue, so the figures are the cost of the class path and the
// driver, not of a consumer.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "drivers/nic/nic_driver.h"
#include "drivers/sdk/in_process.h"
#include "runtime/base/clock.h"
#include "runtime/hw/nic/nic.h"
#include "runtime/hw/nic/wire.h"
#include "runtime/supervisor/supervisor.h"
#include "shadows/net/net_protocol.h"
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

runtime::DriverHostOptions HostOptions(hw::nic::Nic* nic) {
  runtime::DriverHostOptions o;
  o.device_name = "nic0";
  o.driver_binary = UMBRA_NIC_DRIVER;
  o.heartbeat_period_ns = 20 * kMs;
  o.data = {.ring_entries = 256, .buffer_size = 2048, .buffer_count = 512};
  o.restart.budget = 1'000'000;
  o.restart.backoff_initial_ns = 0;
  o.hw = nic;
  return o;
}

void InProcessTx(benchmark::State& state, size_t size) {
  Device dev = Device::Make();
  hw::Resources r = dev.nic->resources();
  sdk::InProcessRunner::Options o;
  o.pool_bytes = 512 * 2048;
  o.hw = sdk::HwView{reinterpret_cast<std::byte*>(&dev.nic->registers()), hw::nic::kNicRegisterWindowSize,
                     dev.nic->dma(), dev.nic->dma_size()};
  o.hw_doorbell_fd = r.doorbell_fd;
  o.hw_interrupt_fd = r.interrupt_fd;
  sdk::InProcessRunner run(std::make_unique<drivers::NicDriver>(), o);
  if (!run.Probe() || !run.Call(kSetUp, Encode(NetUpBody{.up = 1}))) {
    state.SkipWithError("in-process probe failed");
    return;
  }
  const auto frame = MakeFrame(size);
  uint64_t submitted = 0, completed = 0, next_buffer = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < kBatch; ++i) {
      const uint32_t off = static_cast<uint32_t>((next_buffer++ % 512) * 2048);
      std::memcpy(run.pool() + off, frame.data(), size);
      run.Submit(ipc::Descriptor{.id = submitted + 1, .op = kTx, .flags = 0, .status = 0, .offset = off,
                                 .length = static_cast<uint32_t>(size), .arg = 0});
      ++submitted;
    }
    completed += run.completions().size();
    run.completions().clear();
    // The same bound a ring of 256 entries puts on the isolated modes.
    while (submitted - completed > 256) {
      run.PollInterrupt();
      completed += run.completions().size();
      run.completions().clear();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(submitted));
}

void IsolatedTx(benchmark::State& state, size_t size) {
  Device dev = Device::Make();
  runtime::Supervisor sup;
  runtime::DriverHost& host = **sup.AddDevice(HostOptions(dev.nic.get()));
  host.Start();
  if (!host.WaitUntilRunning(10 * kSec) || !host.Call(kSetUp, Encode(NetUpBody{.up = 1}), kSec)) {
    state.SkipWithError("driver did not start");
    return;
  }
  std::vector<uint32_t> free;
  while (auto b = host.AllocBuffer()) free.push_back(*b);
  const auto frame = MakeFrame(size);
  std::vector<runtime::Request> reqs(kBatch);
  std::vector<runtime::Completion> done(256);
  uint64_t sent = 0;
  for (auto _ : state) {
    size_t n = 0;
    while (n < kBatch) {
      if (free.size() < kBatch) {
        const size_t got = host.Wait(done, kSec);
        for (size_t i = 0; i < got; ++i) free.push_back(static_cast<uint32_t>(done[i].cookie));
        continue;
      }
      for (; n < kBatch; ++n) {
        const uint32_t off = free.back();
        free.pop_back();
        std::memcpy(host.buffer(off), frame.data(), size);
        reqs[n] = runtime::Request{.op = kTx, .offset = off, .length = static_cast<uint32_t>(size),
                                   .capacity = static_cast<uint32_t>(size), .cookie = off};
      }
      size_t accepted = *host.Submit({reqs.data(), n});
      for (size_t i = accepted; i < n; ++i) free.push_back(reqs[i].offset);
      sent += accepted;
      n = accepted;
      const size_t got = host.Poll(done);
      for (size_t i = 0; i < got; ++i) free.push_back(static_cast<uint32_t>(done[i].cookie));
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(sent));
  host.Shutdown();
}

void ShadowTx(benchmark::State& state, size_t size, shadows::RecoveryMode mode) {
  Device dev = Device::Make();
  runtime::Supervisor sup;
  runtime::DriverHost& host = **sup.AddDevice(HostOptions(dev.nic.get()));
  auto shadow = std::move(*NetShadow::Create(host, {}, mode));
  if (!shadow->Open(10 * kSec) || !shadow->Up()) {
    state.SkipWithError("shadow did not open");
    return;
  }
  const auto frame = MakeFrame(size);
  std::vector<FrameView> batch(kBatch, FrameView(frame));
  uint64_t sent = 0;
  for (auto _ : state) {
    size_t done = 0;
    while (done < kBatch) done += *shadow->Transmit({batch.data() + done, kBatch - done});
    sent += done;
  }
  state.SetItemsProcessed(static_cast<int64_t>(sent));
  shadow->Stop();
}

void BM_Tx(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(1));
  switch (state.range(0)) {
    case 0: InProcessTx(state, size); break;
    case 1: IsolatedTx(state, size); break;
    case 2: ShadowTx(state, size, shadows::RecoveryMode::kShadow); break;
    case 3: ShadowTx(state, size, shadows::RecoveryMode::kRestartOnly); break;
  }
}
BENCHMARK(BM_Tx)->ArgsProduct({{0, 1, 2, 3}, {64, 1500}})->ArgNames({"mode", "bytes"})->UseRealTime();

// Kills the driver `rounds` times under a file transfer into the NIC and
// reports the gap from each kill to the first frame the new driver delivers.
void BM_RecoveryGap(benchmark::State& state) {
  const int sig = static_cast<int>(state.range(0));
  const int rounds = 20;
  Device dev = Device::Make();
  runtime::Supervisor sup;
  runtime::DriverHost& host = **sup.AddDevice(HostOptions(dev.nic.get()));
  auto shadow = std::move(*NetShadow::Create(host, {}));
  if (!shadow->Open(10 * kSec) || !shadow->Up()) {
    state.SkipWithError("shadow did not open");
    return;
  }
  std::vector<double> gaps_us;
  for (auto _ : state) {
    std::atomic<bool> stop{false};
    std::vector<std::byte> file(64 << 20, std::byte{7});
    std::thread sender([&] {
      workloads::PeerPort peer(*dev.peer, kPeerMac);
      while (!stop) (void)workloads::SendFile(peer, shadow->Mac(), file, {.timeout_ns = 5 * kSec});
    });
    std::thread receiver([&] {
      workloads::InterfacePort nic(*shadow);
      while (!stop) (void)workloads::ReceiveFile(nic, {.timeout_ns = 5 * kSec, .linger_ns = 10 * kMs});
    });
    for (int i = 0; i < rounds; ++i) {
      usleep(20'000);
      const size_t before = shadow->recoveries().size();
      const int64_t t0 = MonotonicNanos();
      host.Kill(sig);
      while (shadow->recoveries().size() == before) usleep(50);
      (void)shadow->WaitUntilPassive(10 * kSec);
      const int64_t deadline = MonotonicNanos() + 2 * kSec;
      while (shadow->first_rx_after_recovery_ns() == 0 && MonotonicNanos() < deadline) usleep(20);
      if (const int64_t t1 = shadow->first_rx_after_recovery_ns(); t1 > t0) {
        gaps_us.push_back(static_cast<double>(t1 - t0) / 1000.0);
      }
    }
    stop = true;
    sender.join();
    receiver.join();
  }
  std::sort(gaps_us.begin(), gaps_us.end());
  if (gaps_us.empty()) return;
  state.counters["gap_median_us"] = gaps_us[gaps_us.size() / 2];
  state.counters["gap_p99_us"] = gaps_us[std::min(gaps_us.size() - 1, gaps_us.size() * 99 / 100)];
  state.counters["samples"] = static_cast<double>(gaps_us.size());
  shadow->Stop();
}
BENCHMARK(BM_RecoveryGap)
    ->Arg(SIGSEGV)->Arg(SIGABRT)->Arg(SIGKILL)->Arg(SIGSTOP)
    ->ArgName("signal")->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace umbra::net

BENCHMARK_MAIN();
