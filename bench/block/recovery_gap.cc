// bench/block's recovery-gap cases: see block_bench.cc's file comment.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench/block/bench_env.h"
#include "base/clock.h"

namespace umbra::shadows::block::bench {
namespace {

template <class T>
double Pct(std::vector<T> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))]);
}

// Args: signal, warm standby (0/1). A depth-1 random read/write client on
// the shadowed disk while the driver is killed `UMBRA_BLOCK_BENCH_CRASHES`
// times (default 100), 100-150 ms apart so that the standby (spawned 50 ms
// after a recovery) is ready. Per crash: the longest a request waited
// because of it (the gap), and where the time went, split at the steps of
// the shadow's RecoveryRecord (medians, µs).
void BM_RecoveryGap(benchmark::State& state) {
  const int sig = static_cast<int>(state.range(0));
  const bool standby = state.range(1) != 0;
  const char* env_crashes = std::getenv("UMBRA_BLOCK_BENCH_CRASHES");
  const int crashes = env_crashes ? std::atoi(env_crashes) : 100;
  Env& env = *GapEnvFor(standby);
  BlockShadow& d = *env.shadow;
  std::vector<int64_t> gaps, detect, restart, replay, reopen, resubmit, passive, total;
  uint64_t fast_restarts = 0;  // restart phase under 1 ms: a standby, mostly
  for (auto _ : state) {
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> errors{0};
    std::thread client([&] {
      std::vector<std::byte> buf(kBs);
      std::mt19937_64 rng(7);
      while (!stop) {
        const uint64_t lba = rng() % kCapacity;
        auto r = (rng() & 1) != 0 ? d.Read(lba, buf) : d.Write(lba, buf);
        if (!r) ++errors;
      }
    });
    std::mt19937 rng(static_cast<uint32_t>(sig));
    (void)d.TakeRecoveryWaits();
    const BlockStats stats0 = d.stats();
    for (int i = 0; i < crashes; ++i) {
      usleep(std::uniform_int_distribution<int>(100'000, 150'000)(rng));
      const size_t before = d.recoveries().size();
      const int64_t kill_ns = MonotonicNanos();
      env.sup->Find("disk0")->Kill(sig);
      const int64_t deadline = MonotonicNanos() + 5 * kSec;
      while (d.recoveries().size() == before && MonotonicNanos() < deadline) usleep(20);
      (void)d.WaitUntilPassive(5 * kSec);
      usleep(2000);  // let the caught requests complete
      auto waits = d.TakeRecoveryWaits();
      if (!waits.empty()) gaps.push_back(*std::max_element(waits.begin(), waits.end()));
      const auto records = d.recoveries();
      if (records.size() != before + 1 || !records.back().succeeded) continue;  // a double fault: not split
      const RecoveryRecord& r = records.back();
      detect.push_back(r.detected_ns - kill_ns);
      restart.push_back(r.restarted_ns - r.detected_ns);
      replay.push_back(r.replayed_ns - r.restarted_ns);
      reopen.push_back(r.reopened_ns - r.replayed_ns);
      resubmit.push_back(r.resubmitted_ns - r.reopened_ns);
      passive.push_back(r.passive_ns - r.resubmitted_ns);
      total.push_back(r.passive_ns - kill_ns);
      fast_restarts += r.restarted_ns - r.detected_ns < 1'000'000;
    }
    stop = true;
    client.join();
    state.counters["client_errors"] = static_cast<double>(errors.load());
    const BlockStats stats1 = d.stats();
    // Acknowledged writes still only in the device's cache, written again
    // after each reset, and requests caught in flight.
    state.counters["replayed_writes_per_crash"] =
        static_cast<double>(stats1.replayed_writes - stats0.replayed_writes) / crashes;
    state.counters["resubmitted_per_crash"] = static_cast<double>(stats1.resubmitted - stats0.resubmitted) / crashes;
  }
  if (gaps.empty()) return;
  state.counters["crashes_measured"] = static_cast<double>(gaps.size());
  state.counters["restarts_under_1ms"] = static_cast<double>(fast_restarts);
  state.counters["gap_median_us"] = Pct(gaps, 0.5) / 1e3;
  state.counters["gap_p99_us"] = Pct(gaps, 0.99) / 1e3;
  state.counters["gap_max_us"] = Pct(gaps, 1.0) / 1e3;
  state.counters["ph_detect_us"] = Pct(detect, 0.5) / 1e3;
  state.counters["ph_restart_us"] = Pct(restart, 0.5) / 1e3;
  state.counters["ph_replay_us"] = Pct(replay, 0.5) / 1e3;
  state.counters["ph_reopen_us"] = Pct(reopen, 0.5) / 1e3;
  state.counters["ph_resubmit_us"] = Pct(resubmit, 0.5) / 1e3;
  state.counters["ph_passive_us"] = Pct(passive, 0.5) / 1e3;
  state.counters["ph_total_us"] = Pct(total, 0.5) / 1e3;
  state.counters["ph_restart_p99_us"] = Pct(restart, 0.99) / 1e3;
  state.counters["ph_total_p99_us"] = Pct(total, 0.99) / 1e3;
  state.SetLabel(sig == SIGKILL ? "SIGKILL" : sig == SIGSEGV ? "SIGSEGV" : sig == SIGABRT ? "SIGABRT" : "SIGSTOP");
}

}  // namespace

void RegisterRecoveryGap() {
  for (int sig : {SIGKILL, SIGSEGV, SIGABRT, SIGSTOP}) {
    for (int standby : {0, 1}) {
      benchmark::RegisterBenchmark("BM_RecoveryGap", BM_RecoveryGap)
          ->Args({sig, standby})
          ->ArgNames({"sig", "standby"})
          ->Iterations(1)
          ->UseRealTime();
    }
  }
}

}  // namespace umbra::shadows::block::bench
