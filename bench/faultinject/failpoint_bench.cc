// The cost of a failpoint, as ratios against an empty out-of-line function
// call measured in the same run:
//   disarmed      nothing armed in the process: one relaxed atomic load
//   armed-other   something armed, but no rule matches this site
//   armed-skip    this site's rule is armed but never triggers (a huge skip)
//   armed-0pct    this site's rule is armed at 0%: a PRNG draw per hit
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <set>
#include <string>

#include "faultinject/failpoint.h"

namespace umbra::faultinject {
namespace {

[[gnu::noinline]] int EmptyFunction(int x) {
  asm volatile("");
  return x;
}

void BM_EmptyCall(benchmark::State& state) {
  int x = 0;
  for (auto _ : state) {
    x = EmptyFunction(x);
    benchmark::DoNotOptimize(x);
  }
}
BENCHMARK(BM_EmptyCall);

void BM_Disarmed(benchmark::State& state) {
  FailpointRegistry::Global().Disarm();
  for (auto _ : state) {
    Action a = UMBRA_FAILPOINT("bench.site");
    benchmark::DoNotOptimize(a);
  }
}
BENCHMARK(BM_Disarmed);

void RunArmed(benchmark::State& state, const char* spec) {
  FailpointRegistry& global = FailpointRegistry::Global();
  if (!global.Arm(*ParseSpec(spec), "dev0", "drv")) {
    state.SkipWithError("arm failed");
    return;
  }
  for (auto _ : state) {
    Action a = UMBRA_FAILPOINT("bench.site");
    benchmark::DoNotOptimize(a);
  }
  global.Disarm();
}

void BM_ArmedOtherSite(benchmark::State& state) { RunArmed(state, "seed=1;other.site=abort"); }
BENCHMARK(BM_ArmedOtherSite);

void BM_ArmedSkip(benchmark::State& state) { RunArmed(state, "seed=1;bench.site=1000000000000+abort"); }
BENCHMARK(BM_ArmedSkip);

void BM_ArmedZeroPercent(benchmark::State& state) { RunArmed(state, "seed=1;bench.site=0%abort"); }
BENCHMARK(BM_ArmedZeroPercent);

// Prints the usual table, then each benchmark as a ratio to BM_EmptyCall.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    // CPU time: the machine is shared, and wall time also counts the moments
    // another process had the core. With repetitions, the median is kept.
    for (const Run& run : runs) {
      std::string name = run.run_name.function_name;
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") continue;
      if (run.run_type == Run::RT_Iteration && medians_.contains(name)) continue;
      if (run.run_type == Run::RT_Aggregate) medians_.insert(name);
      ns_[name] = run.GetAdjustedCPUTime();
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    auto base = ns_.find("BM_EmptyCall");
    if (base == ns_.end() || base->second <= 0) return;
    std::printf("\nCPU time per hit, as a ratio to an empty function call (%.2f ns):\n", base->second);
    for (const auto& [name, ns] : ns_) {
      std::printf("  %-24s %8.2f ns  %6.2fx\n", name.c_str(), ns, ns / base->second);
    }
  }

 private:
  std::map<std::string, double> ns_;  // benchmark → CPU ns per iteration
  std::set<std::string> medians_;     // benchmarks whose median is in ns_
};

}  // namespace
}  // namespace umbra::faultinject

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  umbra::faultinject::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
