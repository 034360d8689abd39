// Device-model benchmarks: N devices with 3 links each (a random DAG, added
// in a random order): build, full probe ordering, and the cascades when a
// supplier near the root crashes (recovering -> recovered) or fails for good.
//
// Times are host CPU time of the model's thread (manual timing). Set-up such
// as building the model before a probe run, and tearing it down after, runs
// with the timers paused, so neither the Time column nor the CPU column (the
// process's CPU time) counts it.
//
// Each benchmark also reports `vs_baseline`: its time divided by the time of
// the least work the same graph needs with plain vectors (Kahn's topological
// sort over the same devices and links), measured in the same run.
//
//   umbra_model_bench --benchmark_filter=10000 --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <time.h>

#include <chrono>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "runtime/model/inprocess_backend.h"
#include "runtime/model/model.h"

namespace umbra::model {
namespace {

constexpr int kLinksPerDevice = 3;

struct Graph {
  int n = 0;
  std::vector<int> add_order;              // devices in registration order
  std::vector<std::pair<int, int>> links;  // (consumer, supplier), supplier < consumer
};

std::string Name(int i) { return "d" + std::to_string(i); }

// Host CPU time of the calling thread: the model's work runs on it (the
// in-process backend completes probes synchronously), and a loaded machine
// does not inflate it the way it inflates wall-clock time.
double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

Graph MakeGraph(int n) {
  Graph g;
  g.n = n;
  std::mt19937 rng(12345);
  for (int c = 1; c < n; ++c) {
    int k = std::min(kLinksPerDevice, c);
    std::vector<int> picked;
    while (static_cast<int>(picked.size()) < k) {
      // Biased towards low indices so that a few devices near the root supply many.
      int s = static_cast<int>(std::uniform_real_distribution<double>(0, 1)(rng) *
                               std::uniform_real_distribution<double>(0, 1)(rng) * c);
      if (std::find(picked.begin(), picked.end(), s) == picked.end()) picked.push_back(s);
    }
    for (int s : picked) g.links.emplace_back(c, s);
  }
  g.add_order.resize(n);
  for (int i = 0; i < n; ++i) g.add_order[i] = i;
  std::shuffle(g.add_order.begin(), g.add_order.end(), rng);
  std::shuffle(g.links.begin(), g.links.end(), rng);
  return g;
}

const Graph& CachedGraph(int n) {
  static std::map<int, Graph> graphs;
  auto it = graphs.find(n);
  if (it == graphs.end()) it = graphs.emplace(n, MakeGraph(n)).first;
  return it->second;
}

// The baseline: a topological order of the same graph with plain vectors.
double BaselineSeconds(const Graph& g) {
  double start = ThreadCpuSeconds();
  std::vector<std::vector<int>> consumers(g.n);
  std::vector<int> pending(g.n, 0);
  for (auto [c, s] : g.links) {
    consumers[s].push_back(c);
    ++pending[c];
  }
  std::vector<int> ready, order;
  for (int i : g.add_order) {
    if (pending[i] == 0) ready.push_back(i);
  }
  while (!ready.empty()) {
    int d = ready.back();
    ready.pop_back();
    order.push_back(d);
    for (int c : consumers[d]) {
      if (--pending[c] == 0) ready.push_back(c);
    }
  }
  benchmark::DoNotOptimize(order.data());
  return ThreadCpuSeconds() - start;
}

enum class Order { kRandom, kSuppliersFirst };

std::unique_ptr<Model> BuildUnbound(const Graph& g, Order order = Order::kRandom) {
  auto model = Model::Create().value();
  (void)model->AddBus("platform");
  std::vector<int> add_order = g.add_order;
  if (order == Order::kSuppliersFirst) std::sort(add_order.begin(), add_order.end());
  for (int i : add_order) {
    (void)model->AddDevice({.name = Name(i), .bus = "platform", .compatible = {"bench,dev"}});
  }
  for (auto [c, s] : g.links) {
    auto ok = model->AddLink(Name(c), Name(s), LinkFlag::kManaged);
    if (!ok) std::abort();
  }
  return model;
}

void AddDriver(Model& model) {
  auto backend = std::make_shared<InProcessBackend>(model, InProcessBackend::Completion::kSynchronous);
  (void)model.AddDriver({.name = "benchdrv", .bus = "platform", .compatible = {"bench,dev"}}, backend);
}

class CountingListener : public LinkListener {
 public:
  void OnSupplierRecovering(const Device&) override { count.fetch_add(1, std::memory_order_relaxed); }
  void OnSupplierRecovered(const Device&) override { count.fetch_add(1, std::memory_order_relaxed); }
  void OnSupplierFailed(const Device&, LinkOptional) override { count.fetch_add(1, std::memory_order_relaxed); }
  std::atomic<int64_t> count{0};
};

void ReportBaseline(benchmark::State& state, const Graph& g, double model_seconds_per_iter) {
  double base = 1e9;
  for (int i = 0; i < 5; ++i) base = std::min(base, BaselineSeconds(g));
  state.counters["devices"] = g.n;
  state.counters["links"] = static_cast<double>(g.links.size());
  state.counters["baseline_ms"] = base * 1e3;
  state.counters["vs_baseline"] = model_seconds_per_iter / base;
}

// Registering every device and link (cycle checks included).
void BM_Build(benchmark::State& state) {
  const Graph& g = CachedGraph(static_cast<int>(state.range(0)));
  double total = 0;
  for (auto _ : state) {
    double start = ThreadCpuSeconds();
    auto model = BuildUnbound(g);
    state.SetIterationTime(ThreadCpuSeconds() - start);
    total += ThreadCpuSeconds() - start;
    state.PauseTiming();
    model.reset();
    state.ResumeTiming();
  }
  ReportBaseline(state, g, total / state.iterations());
}

// The same with devices registered suppliers first: the topological order
// never needs repair, so this is the cost without cycle-check searches.
void BM_BuildSuppliersFirst(benchmark::State& state) {
  const Graph& g = CachedGraph(static_cast<int>(state.range(0)));
  double total = 0;
  for (auto _ : state) {
    double start = ThreadCpuSeconds();
    auto model = BuildUnbound(g, Order::kSuppliersFirst);
    state.SetIterationTime(ThreadCpuSeconds() - start);
    total += ThreadCpuSeconds() - start;
    state.PauseTiming();
    model.reset();
    state.ResumeTiming();
  }
  ReportBaseline(state, g, total / state.iterations());
}

// Registering the driver: every device probes, consumers after suppliers.
void BM_ProbeOrdering(benchmark::State& state) {
  const Graph& g = CachedGraph(static_cast<int>(state.range(0)));
  double total = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto model = BuildUnbound(g);
    state.ResumeTiming();
    double start = ThreadCpuSeconds();
    AddDriver(*model);
    state.SetIterationTime(ThreadCpuSeconds() - start);
    total += ThreadCpuSeconds() - start;
    state.PauseTiming();
    if (model->device_state(Name(g.n - 1)).value() != DeviceState::kBound) std::abort();
    model.reset();
    state.ResumeTiming();
  }
  ReportBaseline(state, g, total / state.iterations());
}

// The root supplier's driver crashes and comes back: every direct consumer
// hears it twice; nothing is unbound.
void BM_CrashCascade(benchmark::State& state) {
  const Graph& g = CachedGraph(static_cast<int>(state.range(0)));
  auto model = BuildUnbound(g);
  AddDriver(*model);
  auto listener = std::make_shared<CountingListener>();
  for (int i = 0; i < g.n; ++i) (void)model->SetLinkListener(Name(i), listener);
  double total = 0;
  for (auto _ : state) {
    double start = ThreadCpuSeconds();
    (void)model->SetRecovering(Name(0));
    (void)model->SetRecovered(Name(0));
    state.SetIterationTime(ThreadCpuSeconds() - start);
    total += ThreadCpuSeconds() - start;
  }
  state.counters["notices_per_iter"] = static_cast<double>(listener->count.load()) / state.iterations();
  ReportBaseline(state, g, total / state.iterations());
}

// The root supplier fails for good: its dependents unbind, consumers first.
void BM_FailCascade(benchmark::State& state) {
  const Graph& g = CachedGraph(static_cast<int>(state.range(0)));
  double total = 0;
  int64_t unbound = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto model = BuildUnbound(g);
    AddDriver(*model);
    state.ResumeTiming();
    double start = ThreadCpuSeconds();
    (void)model->SetFailed(Name(0), "bench");
    state.SetIterationTime(ThreadCpuSeconds() - start);
    total += ThreadCpuSeconds() - start;
    state.PauseTiming();
    unbound = 0;
    for (int i = 0; i < g.n; ++i) unbound += model->device_state(Name(i)).value() == DeviceState::kUnbound;
    model.reset();
    state.ResumeTiming();
  }
  state.counters["unbound"] = static_cast<double>(unbound);
  ReportBaseline(state, g, total / state.iterations());
}

BENCHMARK(BM_Build)->Arg(1000)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK(BM_BuildSuppliersFirst)->Arg(1000)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK(BM_ProbeOrdering)->Arg(1000)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK(BM_CrashCascade)->Arg(1000)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK(BM_FailCascade)->Arg(1000)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond)->UseManualTime();

}  // namespace
}  // namespace umbra::model

BENCHMARK_MAIN();
