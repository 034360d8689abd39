// bench/recorder: what recording costs the net data path.
//
//   BM_NetTxRecording/bytes: three shadowed NICs (driver processes, passive
//   net shadows) in one process — recording off (DriverHostOptions.recorder
//   = nullptr), recording every request (sampling 1), and sampling 1 in 16 —
//   driven in turn (the order rotating), rounds of 256 batches of 32 frames
//   each, so that a shared machine's load falls on all three alike. Every frame is a
//   RequestSubmitted and, when its TX completion is polled, a
//   RequestCompleted. Counters: frames/s per variant, `on_vs_off` (rate on /
//   rate off; 1.0 = free) and the cost per frame in ns, in wall time and in
//   the application thread's CPU time (the writer thread runs apart; its
//   CPU time per event is bench_recorder's writer_cpu_ns_per_event).
//   `on_lost` / `sampled16_lost`: the share of the per-request events the
//   recorder dropped because its buffer was full (the writer fell behind).
#include <time.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "recorder/recorder.h"
#include "runtime/base/clock.h"
#include "runtime/hw/nic/nic.h"
#include "runtime/hw/nic/wire.h"
#include "runtime/supervisor/supervisor.h"
#include "shadows/net/net_shadow.h"

namespace umbra::net {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;
constexpr size_t kBatch = 32;
constexpr int kRound = 256;
constexpr uint64_t kPeerMac = 0x990000000002;
constexpr int kVariants = 3;
constexpr const char* kNames[kVariants] = {"off", "on", "sampled16"};
constexpr uint32_t kSampling[kVariants] = {0, 1, 16};

int64_t ThreadCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * kSec + ts.tv_nsec;
}

std::vector<std::byte> MakeFrame(size_t size) {
  std::vector<std::byte> f(size, std::byte{0x42});
  for (int i = 0; i < 6; ++i) f[i] = std::byte(kPeerMac >> (8 * i));
  f[12] = std::byte{0x88};
  f[13] = std::byte{0xB6};
  return f;
}

// One NIC on its own in-process wire, its driver in a process, the net shadow
// in front; optionally a recorder for its events.
struct Variant {
  std::unique_ptr<hw::nic::Nic> nic;
  std::unique_ptr<hw::nic::PeerEndpoint> peer;
  std::unique_ptr<recorder::Recorder> rec;  // outlives the shadow that records into it
  std::unique_ptr<NetShadow> shadow;
  std::string trace_path;
};

// Members in destruction order: shadows stop before the supervisor, recorders
// close after the shadows, NICs last.
struct Rig {
  std::array<Variant, kVariants> v;
  runtime::Supervisor sup;

  bool Start() {
    for (int i = 0; i < kVariants; ++i) {
      Variant& x = v[i];
      auto ports = hw::nic::WirePort::CreatePair();
      if (!ports) return false;
      auto nic = hw::nic::Nic::Create({.name = std::string("nic") + std::to_string(i)}, std::move(ports->first));
      auto peer = hw::nic::PeerEndpoint::Create(std::move(ports->second));
      if (!nic || !peer) return false;
      x.nic = std::move(*nic);
      x.peer = std::move(*peer);
      x.nic->Start();
      if (kSampling[i] != 0) {
        x.trace_path = (std::filesystem::temp_directory_path() /
                        ("umbra-bench-recording-" + std::to_string(getpid()) + "-" + kNames[i] + ".trace"))
                           .string();
        auto r = recorder::Recorder::Create({.path = x.trace_path, .sampling_rate = kSampling[i]});
        if (!r) return false;
        x.rec = std::move(*r);
      }
      runtime::DriverHostOptions o;
      o.device_name = std::string("nic") + std::to_string(i);
      o.device_class = "net";
      o.driver_binary = UMBRA_NIC_DRIVER;
      o.heartbeat_period_ns = 20 * kMs;
      o.data = {.ring_entries = 256, .buffer_size = 2048, .buffer_count = 512};
      o.hw = x.nic.get();
      o.recorder = x.rec.get();
      auto host = sup.AddDevice(std::move(o));
      if (!host) return false;
      auto s = NetShadow::Create(**host, {});
      if (!s) return false;
      x.shadow = std::move(*s);
      if (!x.shadow->Open(10 * kSec) || !x.shadow->Up()) return false;
    }
    return true;
  }

  ~Rig() {
    for (Variant& x : v) {
      if (x.shadow) x.shadow->Stop();
      x.shadow.reset();
    }
    sup.Stop();
    for (Variant& x : v) {
      if (x.rec) (void)x.rec->Close();
      if (!x.trace_path.empty()) std::filesystem::remove(x.trace_path);
      if (x.nic) x.nic->Stop();
    }
  }
};

uint64_t SendBatch(NetShadow& shadow, std::span<const FrameView> batch) {
  size_t done = 0;
  while (done < batch.size()) {
    auto r = shadow.Transmit(batch.subspan(done));
    if (!r) return done;
    done += *r;
  }
  return done;
}

void BM_NetTxRecording(benchmark::State& state) {
  const auto frame = MakeFrame(static_cast<size_t>(state.range(0)));
  Rig rig;
  if (!rig.Start()) {
    state.SkipWithError("a NIC did not start");
    return;
  }
  std::vector<FrameView> batch(kBatch, FrameView(frame));
  std::array<int64_t, kVariants> wall{}, cpu{};
  std::array<uint64_t, kVariants> frames{};
  int first = 0;
  for (auto _ : state) {
    // Rotate which variant goes first, so that none always follows the same one.
    first = (first + 1) % kVariants;
    for (int k = 0; k < kVariants; ++k) {
      const int i = (first + k) % kVariants;
      NetShadow& shadow = *rig.v[i].shadow;
      const int64_t t0 = MonotonicNanos(), c0 = ThreadCpuNanos();
      for (int r = 0; r < kRound; ++r) frames[i] += SendBatch(shadow, batch);
      wall[i] += MonotonicNanos() - t0;
      cpu[i] += ThreadCpuNanos() - c0;
    }
  }
  auto per_frame = [&](const std::array<int64_t, kVariants>& t, int i) {
    return frames[i] > 0 ? static_cast<double>(t[i]) / static_cast<double>(frames[i]) : 0.0;
  };
  for (int i = 0; i < kVariants; ++i) {
    const double ns = per_frame(wall, i);
    state.counters[std::string(kNames[i]) + "_fps"] = ns > 0 ? 1e9 / ns : 0;
    if (!rig.v[i].rec) continue;
    // Share of the per-request events the recorder had to drop (buffer full).
    const double events = 2.0 * static_cast<double>(frames[i]) / kSampling[i];
    state.counters[std::string(kNames[i]) + "_lost"] =
        events > 0 ? static_cast<double>(rig.v[i].rec->lost_events()) / events : 0;
  }
  for (int i = 1; i < kVariants; ++i) {
    const std::string n = kNames[i];
    const double off = per_frame(wall, 0), on = per_frame(wall, i);
    state.counters[n + "_vs_off"] = on > 0 ? off / on : 0;
    state.counters[n + "_cost_ns"] = on - off;
    state.counters[n + "_cpu_vs_off"] = per_frame(cpu, i) > 0 ? per_frame(cpu, 0) / per_frame(cpu, i) : 0;
    state.counters[n + "_cpu_cost_ns"] = per_frame(cpu, i) - per_frame(cpu, 0);
  }
}
BENCHMARK(BM_NetTxRecording)->Arg(64)->Arg(1500)->ArgName("bytes")->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace umbra::net

BENCHMARK_MAIN();
