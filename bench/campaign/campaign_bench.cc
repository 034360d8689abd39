// The campaign rate: whole runs (set-up, workload, verification, tear-down)
// of each workload with short units, one at a time, reported as
//   faults/s   faults injected per second of wall time
//   ratio      wall time per run with the fault, against the same run with
//              nothing injected (the plan's only failpoint never triggers),
//              measured in the same process: what a fault and its recovery
//              add to a run.
//
//   build/<dir>/bench/campaign/campaign_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// Wall (real) time: a run's cost is spread over the host's threads, the
// driver process and the emulated device's thread.
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "campaign/campaign.h"

namespace umbra::faultinject::campaign {
namespace {

struct BenchWorkload {
  const char* name;
  uint64_t units;
};
constexpr BenchWorkload kWorkloads[] = {
    {"echo-stream", 50}, {"file-transfer", 32}, {"disk-verifier", 64}, {"sqlite", 4}, {"audio-playback", 12}};
constexpr FaultType kFaults[] = {FaultType::kSegfault, FaultType::kSigkill};
// Armed in the first driver, never reached: the run pays for arming, not for a fault.
constexpr const char* kNoFaultPlan = "seed=1;slow@sdk.request+1000000000";

void BM_Run(benchmark::State& state, BenchWorkload w, std::optional<FaultType> fault) {
  WorkloadRegistry registry;
  if (auto r = RegisterBuiltinWorkloads(registry); !r) {
    state.SkipWithError(r.error().message.c_str());
    return;
  }
  uint64_t runs = 0, injected = 0, transparent = 0;
  for (auto _ : state) {
    RunSpec spec{.index = runs,
                 .seed = RunSeed(2004, runs),
                 .workload = w.name,
                 .fault = fault.value_or(FaultType::kSlow),
                 .units = w.units};
    if (!fault) spec.plan = *ParsePlan(kNoFaultPlan);
    auto r = RunOne(registry, spec);
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      return;
    }
    ++runs;
    injected += r->injected;
    transparent += r->outcome == Outcome::kTransparent;
  }
  state.counters["faults/s"] = benchmark::Counter(static_cast<double>(injected), benchmark::Counter::kIsRate);
  state.counters["faults/run"] = benchmark::Counter(static_cast<double>(injected) / static_cast<double>(runs));
  state.counters["transparent"] = benchmark::Counter(static_cast<double>(transparent) / static_cast<double>(runs));
}

std::string BenchName(const BenchWorkload& w, std::optional<FaultType> fault) {
  return std::string("BM_Run/") + w.name + "/" + (fault ? std::string(FaultTypeName(*fault)) : "none");
}

// Prints the usual table, then each faulted run's wall time as a ratio to
// the same workload's run without a fault.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      const std::string name = run.run_name.function_name;
      if (run.error_occurred) continue;
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") continue;
      if (run.run_type == Run::RT_Iteration && medians_.contains(name)) continue;
      if (run.run_type == Run::RT_Aggregate) medians_.insert(name);
      ms_[name] = run.GetAdjustedRealTime();
      auto rate = run.counters.find("faults/s");
      if (rate != run.counters.end()) rates_[name] = rate->second;
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    std::printf("\nWall time per run against the same run without a fault:\n");
    std::printf("  %-40s %10s %10s %10s\n", "run", "ms/run", "faults/s", "ratio");
    for (const BenchWorkload& w : kWorkloads) {
      auto base = ms_.find(BenchName(w, std::nullopt));
      if (base == ms_.end() || base->second <= 0) continue;
      std::printf("  %-40s %10.2f %10s %9.2fx\n", base->first.c_str(), base->second, "-", 1.0);
      for (FaultType f : kFaults) {
        auto it = ms_.find(BenchName(w, f));
        if (it == ms_.end()) continue;
        std::printf("  %-40s %10.2f %10.1f %9.2fx\n", it->first.c_str(), it->second, rates_[it->first],
                    it->second / base->second);
      }
    }
  }

 private:
  std::map<std::string, double> ms_;     // benchmark → wall ms per run
  std::map<std::string, double> rates_;  // benchmark → faults/s
  std::set<std::string> medians_;        // benchmarks whose median is in ms_
};

}  // namespace
}  // namespace umbra::faultinject::campaign

int main(int argc, char** argv) {
  using namespace umbra::faultinject::campaign;
  spdlog::set_level(spdlog::level::warn);  // a line per recovery would drown the table
  for (const BenchWorkload& w : kWorkloads) {
    benchmark::RegisterBenchmark(BenchName(w, std::nullopt).c_str(), BM_Run, w, std::nullopt)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    for (FaultType f : kFaults) {
      benchmark::RegisterBenchmark(BenchName(w, f).c_str(), BM_Run, w, f)->Unit(benchmark::kMillisecond)->UseRealTime();
    }
  }
  benchmark::Initialize(&argc, argv);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
