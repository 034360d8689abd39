// bench/recorder: what recording costs the net and block data paths.
//
// Each benchmark runs three copies of one data path in one process —
// recording off (DriverHostOptions.recorder = nullptr), recording every
// request (sampling 1), and sampling 1 in 16 — and drives them in turn (the
// order rotating), so that a shared machine's load falls on all three alike.
// Counters: rate per variant, `on_vs_off` (rate on / rate off; 1.0 = free)
// and the cost per request in ns, in wall time and in the application
// thread's CPU time (the writer thread runs apart; its CPU time per event is
// bench_recorder's writer_cpu_ns_per_event). `on_lost` / `sampled16_lost`:
// the share of the per-request events the recorder dropped because its
// buffer was full (the writer fell behind).
//
//   BM_NetTxRecording/bytes: three shadowed NICs (driver processes, passive
//   net shadows), rounds of 256 batches of 32 frames each. Every frame is a
//   RequestSubmitted and, when its TX completion is polled, a
//   RequestCompleted.
//
//   BM_BlockRecording/write: three shadowed disks (emulated disk, driver
//   process, passive block shadow), 4 KiB random reads (write:0) or writes
//   (write:1) kept 32 deep through block::Disk, turns of 2048 requests each.
//   Every request is a RequestSubmitted and a RequestCompleted.
#include <time.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "recorder/recorder.h"
#include "base/clock.h"
#include "runtime/hw/nic/nic.h"
#include "runtime/hw/nic/wire.h"
#include "runtime/hw/disk/disk_device.h"
#include "runtime/supervisor/supervisor.h"
#include "shadows/block/block_shadow.h"
#include "shadows/net/net_shadow.h"

namespace umbra::recording_bench {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;
constexpr int kVariants = 3;
constexpr const char* kNames[kVariants] = {"off", "on", "sampled16"};
constexpr uint32_t kSampling[kVariants] = {0, 1, 16};

int64_t ThreadCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * kSec + ts.tv_nsec;
}

// Variant i's recorder (none for "off"), writing to a temporary trace file.
struct Recording {
  std::unique_ptr<recorder::Recorder> rec;
  std::string trace_path;

  bool Open(int i, const std::string& tag) {
    if (kSampling[i] == 0) return true;
    trace_path = (std::filesystem::temp_directory_path() /
                  ("umbra-bench-recording-" + std::to_string(getpid()) + "-" + tag + "-" + kNames[i] + ".trace"))
                     .string();
    auto r = recorder::Recorder::Create({.path = trace_path, .sampling_rate = kSampling[i]});
    if (!r) return false;
    rec = std::move(*r);
    return true;
  }
  // After the shadow that records into it has stopped.
  void Close() {
    if (rec) (void)rec->Close();
    if (!trace_path.empty()) std::filesystem::remove(trace_path);
  }
};

// What the variants did, summed over the run.
struct Tally {
  std::array<int64_t, kVariants> wall{}, cpu{};
  std::array<uint64_t, kVariants> requests{};

  // Runs `turn` for the variants in turn, the first one rotating; `turn(i)`
  // returns the requests it completed.
  template <class Turn>
  void Round(int round, Turn&& turn) {
    for (int k = 0; k < kVariants; ++k) {
      const int i = (round + k) % kVariants;
      const int64_t t0 = MonotonicNanos(), c0 = ThreadCpuNanos();
      requests[i] += turn(i);
      wall[i] += MonotonicNanos() - t0;
      cpu[i] += ThreadCpuNanos() - c0;
    }
  }

  // The counters described at the top; `rate` names the per-variant rate
  // ("fps", "iops"); every request is two events.
  void Report(benchmark::State& state, const std::string& rate,
              const std::array<const recorder::Recorder*, kVariants>& recs) const {
    auto per_request = [&](const std::array<int64_t, kVariants>& t, int i) {
      return requests[i] > 0 ? static_cast<double>(t[i]) / static_cast<double>(requests[i]) : 0.0;
    };
    for (int i = 0; i < kVariants; ++i) {
      const double ns = per_request(wall, i);
      state.counters[std::string(kNames[i]) + "_" + rate] = ns > 0 ? 1e9 / ns : 0;
      if (!recs[i]) continue;
      // Share of the per-request events the recorder had to drop (buffer full).
      const double events = 2.0 * static_cast<double>(requests[i]) / kSampling[i];
      state.counters[std::string(kNames[i]) + "_lost"] =
          events > 0 ? static_cast<double>(recs[i]->lost_events()) / events : 0;
    }
    for (int i = 1; i < kVariants; ++i) {
      const std::string n = kNames[i];
      const double off = per_request(wall, 0), on = per_request(wall, i);
      state.counters[n + "_vs_off"] = on > 0 ? off / on : 0;
      state.counters[n + "_cost_ns"] = on - off;
      state.counters[n + "_cpu_vs_off"] = per_request(cpu, i) > 0 ? per_request(cpu, 0) / per_request(cpu, i) : 0;
      state.counters[n + "_cpu_cost_ns"] = per_request(cpu, i) - per_request(cpu, 0);
    }
  }
};

// --- net ----------------------------------------------------------------------

namespace net_path {

using net::FrameView;
using net::NetShadow;

constexpr size_t kBatch = 32;
constexpr int kRound = 256;
constexpr uint64_t kPeerMac = 0x990000000002;

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
  Recording recording;  // outlives the shadow that records into it
  std::unique_ptr<NetShadow> shadow;
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
      if (!x.recording.Open(i, "net")) return false;
      runtime::DriverHostOptions o;
      o.device_name = std::string("nic") + std::to_string(i);
      o.device_class = "net";
      o.driver_binary = UMBRA_NIC_DRIVER;
      o.heartbeat_period_ns = 20 * kMs;
      o.data = {.ring_entries = 256, .buffer_size = 2048, .buffer_count = 512};
      o.hw = x.nic.get();
      o.recorder = x.recording.rec.get();
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
      x.recording.Close();
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
  Tally tally;
  int round = 0;
  for (auto _ : state) {
    tally.Round(++round, [&](int i) {
      uint64_t frames = 0;
      for (int r = 0; r < kRound; ++r) frames += SendBatch(*rig.v[i].shadow, batch);
      return frames;
    });
  }
  tally.Report(state, "fps", {nullptr, rig.v[1].recording.rec.get(), rig.v[2].recording.rec.get()});
}
BENCHMARK(BM_NetTxRecording)->Arg(64)->Arg(1500)->ArgName("bytes")->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace net_path

// --- block --------------------------------------------------------------------

namespace block_path {

using shadows::block::BlockShadow;
using shadows::block::IoDone;

constexpr uint64_t kCapacity = 1 << 16;  // 256 MiB of 4 KiB blocks (a sparse image)
constexpr uint32_t kBs = 4096;
constexpr uint32_t kDepth = 32;
constexpr int kTurn = 2048;  // requests per variant per turn

// One emulated disk, its driver in a process, the block shadow in front;
// optionally a recorder for its events.
struct Variant {
  std::unique_ptr<hw::disk::DiskDevice> disk;  // outlives the supervisor, whose host points at it
  Recording recording;                         // outlives the shadow that records into it
  std::unique_ptr<BlockShadow> shadow;
};

// Members in destruction order: shadows stop before the supervisor, recorders
// close after the shadows, disks last.
struct Rig {
  std::string dir;
  std::array<Variant, kVariants> v;
  runtime::Supervisor sup;

  bool Start() {
    char tmpl[] = "/tmp/umbra-bench-recording-XXXXXX";
    if (!::mkdtemp(tmpl)) return false;
    dir = tmpl;
    for (int i = 0; i < kVariants; ++i) {
      Variant& x = v[i];
      hw::disk::DiskOptions d;
      d.name = "recdisk" + std::to_string(::getpid()) + "-" + std::to_string(i);
      d.image_path = dir + "/disk" + std::to_string(i) + ".img";
      d.capacity_blocks = kCapacity;
      auto disk = hw::disk::DiskDevice::Create(std::move(d));
      if (!disk) return false;
      x.disk = std::move(*disk);
      x.disk->Start();
      if (!x.recording.Open(i, "block")) return false;
      runtime::DriverHostOptions o;
      o.device_name = "disk" + std::to_string(i);
      o.device_class = "block";
      o.compatible = hw::disk::kCompatible;
      o.driver_binary = UMBRA_DISK_DRIVER;
      o.heartbeat_period_ns = 100 * kMs;  // a loaded machine can starve a driver for tens of ms
      o.data = {.ring_entries = 64, .buffer_size = 64 << 10, .buffer_count = 128};
      o.settings["queue_depth"] = "32";
      o.hw = x.disk.get();
      o.recorder = x.recording.rec.get();
      auto host = sup.AddDevice(std::move(o));
      if (!host) return false;
      auto s = BlockShadow::Create(**host, {});
      if (!s) return false;
      x.shadow = std::move(*s);
      x.shadow->Start();
      if (!x.shadow->WaitUntilPassive(10 * kSec)) return false;
    }
    return true;
  }

  ~Rig() {
    for (Variant& x : v) x.shadow.reset();
    sup.Stop();
    for (Variant& x : v) {
      x.recording.Close();
      x.disk.reset();
    }
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  }
};

// `count` requests of one 4 KiB block at random LBAs, kDepth in flight, then
// drains; returns the requests completed without error.
uint64_t RunTurn(BlockShadow& disk, uint16_t op, int count, std::vector<std::byte>& bufs, std::mt19937_64& rng) {
  auto submit = [&](uint64_t slot) {
    return disk.Submit(
        {.op = op, .lba = rng() % kCapacity, .blocks = 1, .data = bufs.data() + slot * kBs, .user_data = slot},
        10 * kSec);
  };
  int submitted = 0, in_flight = 0;
  uint64_t ok = 0;
  for (uint32_t slot = 0; slot < kDepth && submitted < count; ++slot, ++submitted, ++in_flight) {
    if (!submit(slot)) return ok;
  }
  std::array<IoDone, kDepth> done;
  while (in_flight > 0) {
    auto n = disk.Reap(done, 1, 10 * kSec);
    if (!n) return ok;
    in_flight -= static_cast<int>(*n);
    for (size_t k = 0; k < *n; ++k) {
      ok += done[k].status == 0;
      if (submitted == count) continue;
      if (!submit(done[k].user_data)) return ok;
      ++submitted;
      ++in_flight;
    }
  }
  return ok;
}

void BM_BlockRecording(benchmark::State& state) {
  const uint16_t op = state.range(0) != 0 ? umbra::block::kWrite : umbra::block::kRead;
  Rig rig;
  if (!rig.Start()) {
    state.SkipWithError("a disk did not start");
    return;
  }
  std::vector<std::byte> bufs(uint64_t{kDepth} * kBs, std::byte{0x5A});
  std::mt19937_64 rng(42);
  Tally tally;
  int round = 0;
  for (auto _ : state) {
    tally.Round(++round, [&](int i) { return RunTurn(*rig.v[i].shadow, op, kTurn, bufs, rng); });
  }
  const uint64_t expected = static_cast<uint64_t>(state.iterations()) * kTurn;
  for (int i = 0; i < kVariants; ++i) {
    if (tally.requests[i] != expected) state.SkipWithError("a request failed");
  }
  tally.Report(state, "iops", {nullptr, rig.v[1].recording.rec.get(), rig.v[2].recording.rec.get()});
}
BENCHMARK(BM_BlockRecording)->Arg(0)->Arg(1)->ArgName("write")->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace block_path

}  // namespace
}  // namespace umbra::recording_bench

BENCHMARK_MAIN();
