// bench/block: IOPS and throughput through the block class in four modes in
// one run, and the recovery gap a client sees.
//
//   BM_RandRead4k/<mode>/<depth>, BM_RandWrite4k/<mode>/<depth>: 4 KiB random
//     I/O over a 256 MiB disk at queue depth 1 and 32 (write cache on).
//   BM_SeqRead1M/<mode>, BM_SeqWrite1M/<mode>: 1 MiB sequential at depth 4.
//   BM_CompareRandRead4k/32, BM_CompareRandWrite4k/32: the four modes at
//     depth 32 in turns of at least 20 ms within one benchmark; counters give
//     each mode's ops/s and its ratio to in-process (the figure to quote: the
//     separate cases above run 0.5 s each, one after the other, and swing
//     with whatever else the machine does meanwhile), and where each mode's
//     CPU went: <mode>_client_us, _driver_us and _device_us (CPU µs per
//     operation of the client thread, the driver process and the disk's
//     hardware thread; in-process the client thread also runs the driver)
//     and <mode>_cpus (CPUs its turns kept busy; the rest idled).
//     mode 0 in-process   — DiskDriver linked into the host (sdk::InProcessRunner)
//     mode 1 isolated     — driver process, DriverHost::Submit directly, no shadow
//     mode 2 shadowed     — block::Disk of the block shadow (passive)
//     mode 3 restart-only — the same shadow in RecoveryMode::kRestartOnly
//   Every case reports `vs_inproc`: its ops/s divided by mode 0's in the same run.
//   BM_RecoveryGap/sig:<signal>/standby:<0|1>: a depth-1 random read/write
//     client on a shadowed disk (with or without a warm standby) while the
//     driver is killed 100 times (env UMBRA_BLOCK_BENCH_CRASHES); per crash,
//     the longest a request waited because of it, median and p99 (µs), the
//     median of each recovery phase (ph_*_us), the p99 of the restart and of
//     kill → passive, and `restarts_under_1ms` (a standby, mostly).
//
// All modes drive the same emulated disk model, so the device's own cost is
// common to all of them. The disk destages its write cache in idle time, as
// disks do (DiskOptions::idle_writeback). In the IOPS cases its hardware
// thread stands for hardware, which has a processor of its own: it runs on
// the last CPU this process may use, and the client, the supervisor and the
// driver processes (which inherit the mask) on the others; every mode runs
// the same way. UMBRA_BENCH_PIN=0 lets the scheduler place them all. The
// recovery-gap cases are never pinned.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench/block/bench_env.h"
#include "base/clock.h"
#include "base/spin.h"

namespace umbra::shadows::block::bench {
namespace {

std::map<std::string, double>& Baselines() {
  static std::map<std::string, double> b;
  return b;
}

// Keeps `depth` requests of `blocks` in flight on one disk; random or
// sequential LBAs. Each Step reaps what completed and submits as many.
class IoStream {
 public:
  IoStream(Disk& d, uint16_t op, uint32_t blocks, bool random, uint32_t depth)
      : d_(d), op_(op), blocks_(blocks), random_(random), depth_(depth),
        bufs_(uint64_t{depth} * blocks * kBs, std::byte{0x5A}), done_(depth), rng_(42) {
    for (uint32_t i = 0; i < depth_; ++i) Resubmit(i);
  }
  ~IoStream() {  // drain what is still in flight, outside any measurement
    for (uint32_t left = depth_; left > 0;) {
      left -= static_cast<uint32_t>(d_.Reap(done_, 1, 10 * kSec).value_or(left));
    }
  }
  // Completed operations (0 after an error, which error() then holds).
  size_t Step() {
    auto n = d_.Reap(done_, 1, 10 * kSec);
    if (!n) {
      error_ = n.error().ToString();
      return 0;
    }
    for (size_t i = 0; i < *n; ++i) {
      if (done_[i].status != 0) ++errors_;
      Resubmit(done_[i].user_data);
    }
    return *n;
  }
  const std::string& error() const { return error_; }
  uint64_t errors() const { return errors_; }

 private:
  void Resubmit(uint64_t slot) {
    uint64_t lba;
    if (random_) {
      lba = (rng_() % (kCapacity / blocks_)) * blocks_;
    } else {
      lba = next_seq_;
      next_seq_ = (next_seq_ + blocks_) % (kCapacity - blocks_);
    }
    (void)d_.Submit(
        {.op = op_, .lba = lba, .blocks = blocks_, .data = bufs_.data() + slot * blocks_ * kBs, .user_data = slot},
        10 * kSec);
  }
  Disk& d_;
  uint16_t op_;
  uint32_t blocks_;
  bool random_;
  uint32_t depth_;
  std::vector<std::byte> bufs_;
  std::vector<IoDone> done_;
  std::mt19937_64 rng_;
  uint64_t next_seq_ = 0;
  uint64_t errors_ = 0;
  std::string error_;
};

void RunIo(benchmark::State& state, const std::string& name, uint16_t op, uint32_t blocks, bool random) {
  const int mode = static_cast<int>(state.range(0));
  const uint32_t depth = static_cast<uint32_t>(state.range(1));
  IoStream io(*EnvFor(mode)->client, op, blocks, random, depth);
  uint64_t ops = 0;
  const int64_t start = MonotonicNanos();
  for (auto _ : state) {
    const size_t n = io.Step();
    if (n == 0 && !io.error().empty()) {
      state.SkipWithError(io.error().c_str());
      break;
    }
    ops += n;
  }
  const double secs = static_cast<double>(MonotonicNanos() - start) / 1e9;
  const double rate = static_cast<double>(ops) / secs;
  state.SetItemsProcessed(static_cast<int64_t>(ops));
  state.SetBytesProcessed(static_cast<int64_t>(ops * blocks * kBs));
  state.counters["ops_per_s"] = rate;
  state.counters["errors"] = static_cast<double>(io.errors());
  const std::string key = name + "/" + std::to_string(depth);
  if (mode == 0) Baselines()[key] = rate;
  if (Baselines().contains(key)) state.counters["vs_inproc"] = rate / Baselines()[key];
  state.SetLabel(kModeNames[mode]);
}

// The four modes in turns of at least 20 ms each, for as long as the library
// runs the benchmark (so that a shared machine's load falls on all of them
// alike, and waking a mode's idle threads at the start of its turn weighs
// little); 4 KiB random I/O at depth 32; reports each mode's ops/s and the
// ratios to the in-process baseline.
void RunCompare(benchmark::State& state, uint16_t op) {
  constexpr int64_t kTurnNs = 20 * kMs;
  constexpr uint32_t kDepth = 32;
  std::array<std::unique_ptr<IoStream>, 4> io;
  for (int mode = 0; mode < 4; ++mode)
    io[mode] = std::make_unique<IoStream>(*EnvFor(mode)->client, op, 1, true, kDepth);
  std::array<int64_t, 4> ns{};
  std::array<uint64_t, 4> ops{};
  std::array<CpuUse, 4> cpu{};
  for (auto _ : state) {
    for (int mode = 0; mode < 4; ++mode) {
      const CpuUse c0 = CpuNow(*EnvFor(mode));
      const int64_t t0 = MonotonicNanos();
      int64_t now = t0;
      while (now - t0 < kTurnNs) {
        const size_t n = io[mode]->Step();
        if (n == 0 && !io[mode]->error().empty()) {
          state.SkipWithError(io[mode]->error().c_str());
          return;
        }
        ops[mode] += n;
        now = MonotonicNanos();
      }
      ns[mode] += now - t0;
      const CpuUse c1 = CpuNow(*EnvFor(mode));
      cpu[mode].client += c1.client - c0.client;
      cpu[mode].driver += c1.driver - c0.driver;
      cpu[mode].device += c1.device - c0.device;
    }
  }
  std::array<double, 4> rate{};
  for (int mode = 0; mode < 4; ++mode) {
    rate[mode] = ns[mode] > 0 ? static_cast<double>(ops[mode]) * 1e9 / static_cast<double>(ns[mode]) : 0;
  }
  state.counters["inproc_ops"] = rate[0];
  state.counters["isolated_ops"] = rate[1];
  state.counters["shadow_ops"] = rate[2];
  state.counters["restart_only_ops"] = rate[3];
  state.counters["isolated_vs_inproc"] = rate[0] > 0 ? rate[1] / rate[0] : 0;
  state.counters["shadow_vs_inproc"] = rate[0] > 0 ? rate[2] / rate[0] : 0;
  state.counters["restart_only_vs_inproc"] = rate[0] > 0 ? rate[3] / rate[0] : 0;
  state.counters["hw_cpu"] = Cpus().hw;
  // Where each mode's CPU went: µs per operation for each party, and how
  // many CPUs its turns kept busy (the rest of the machine's idled).
  const char* const kKeys[] = {"inproc", "isolated", "shadow", "restart_only"};
  for (int mode = 0; mode < 4; ++mode) {
    if (ops[mode] == 0 || ns[mode] == 0) continue;
    const double n = static_cast<double>(ops[mode]) * 1e3;
    const std::string key = kKeys[mode];
    state.counters[key + "_client_us"] = static_cast<double>(cpu[mode].client) / n;
    if (mode != 0) state.counters[key + "_driver_us"] = static_cast<double>(cpu[mode].driver) / n;
    state.counters[key + "_device_us"] = static_cast<double>(cpu[mode].device) / n;
    state.counters[key + "_cpus"] =
        static_cast<double>(cpu[mode].client + cpu[mode].driver + cpu[mode].device) / static_cast<double>(ns[mode]);
  }
}

void BM_RandRead4k(benchmark::State& s) { RunIo(s, "randread", proto::kRead, 1, true); }
void BM_RandWrite4k(benchmark::State& s) { RunIo(s, "randwrite", proto::kWrite, 1, true); }
void BM_SeqRead1M(benchmark::State& s) { RunIo(s, "seqread", proto::kRead, kSlotBytes / kBs, false); }
void BM_SeqWrite1M(benchmark::State& s) { RunIo(s, "seqwrite", proto::kWrite, kSlotBytes / kBs, false); }
void BM_CompareRandRead4k(benchmark::State& s) { RunCompare(s, proto::kRead); }
void BM_CompareRandWrite4k(benchmark::State& s) { RunCompare(s, proto::kWrite); }

void Register() {
  for (int depth : {1, 32}) {
    for (int mode = 0; mode < 4; ++mode) {
      benchmark::RegisterBenchmark("BM_RandRead4k", BM_RandRead4k)->Args({mode, depth})->MinTime(0.5)->UseRealTime();
    }
    for (int mode = 0; mode < 4; ++mode) {
      benchmark::RegisterBenchmark("BM_RandWrite4k", BM_RandWrite4k)->Args({mode, depth})->MinTime(0.5)->UseRealTime();
    }
  }
  for (int mode = 0; mode < 4; ++mode) {
    benchmark::RegisterBenchmark("BM_SeqRead1M", BM_SeqRead1M)->Args({mode, 4})->MinTime(0.5)->UseRealTime();
  }
  for (int mode = 0; mode < 4; ++mode) {
    benchmark::RegisterBenchmark("BM_SeqWrite1M", BM_SeqWrite1M)->Args({mode, 4})->MinTime(0.5)->UseRealTime();
  }
  benchmark::RegisterBenchmark("BM_CompareRandRead4k/32", BM_CompareRandRead4k)->MinTime(2)->UseRealTime();
  benchmark::RegisterBenchmark("BM_CompareRandWrite4k/32", BM_CompareRandWrite4k)->MinTime(2)->UseRealTime();
  RegisterRecoveryGap();
}

}  // namespace
}  // namespace umbra::shadows::block::bench

int main(int argc, char** argv) {
  (void)umbra::shadows::block::bench::Cpus();  // before any thread starts
  umbra::shadows::block::bench::Register();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (auto& e : {0, 1, 2, 3}) umbra::shadows::block::bench::EnvFor(e).reset();
  for (bool standby : {false, true}) umbra::shadows::block::bench::GapEnvFor(standby).reset();
  return 0;
}