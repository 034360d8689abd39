// What recording costs, measured in one run:
//
//   BM_HotPath/0|1   a submitted+completed pair on Recorder::Off() (one branch
//                    each) or into a live recorder whose writer drains
//                    concurrently; a tight loop outruns the writer, so most
//                    "on" events take the buffer-full (lost) path here
//   BM_HotPathRatio  both timed back to back in thread CPU time, "on" in
//                    batches that fit the buffer (nothing lost): ns per event
//                    off and on, and vs_off = on ÷ off
//                    clock_read_ns: one MonotonicNanos(); shared_clock_ns_per_event:
//                    an event whose timestamp the caller passes in
//   BM_Request/0|1   a stand-in request (copy a 64-byte frame into a ring of
//                    buffers) with its two events; vs_off is the cost of
//                    recording relative to the request itself
//   BM_Sustained/1|2 producers record 1 M events each as fast as they can
//                    (buffers large enough that nothing is lost), then Flush:
//                    events/s the writer turns into trace file bytes (wall
//                    time, so a busy machine lowers it), and the writer's CPU
//                    time per event
//
//   bench_recorder --benchmark_counters_tabular=true
//
// The net and block data-path comparison (throughput with recording on vs
// off) belongs with those paths' own benchmarks once they exist.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "recorder/recorder.h"
#include "base/clock.h"

namespace umbra::recorder {
namespace {

std::string TracePath(const char* tag) {
  return (std::filesystem::temp_directory_path() /
          ("umbra-recorder-bench-" + std::to_string(getpid()) + "-" + tag + ".trace"))
      .string();
}

// A live recorder for the hot-path benchmarks, removed at exit.
struct LiveRecorder {
  explicit LiveRecorder(const char* tag, uint32_t buffer_records = 1 << 16) : path(TracePath(tag)) {
    auto r = Recorder::Create(
        {.path = path, .buffer_records = buffer_records, .flush_period = std::chrono::milliseconds(1)});
    if (!r) std::abort();
    rec = std::move(*r);
    device = rec->RegisterDevice("nic0", "net");
  }
  ~LiveRecorder() {
    (void)rec->Close();
    std::filesystem::remove(path);
  }
  std::string path;
  std::unique_ptr<Recorder> rec;
  DeviceId device = 0;
};

// Event pairs per timed batch: fills half of a 1 << 16 record buffer.
constexpr int kBatchPairs = 1 << 14;

// ns per event pair, for the ratios (measured once per configuration).
std::map<std::string, double>& Baselines() {
  static std::map<std::string, double> b;
  return b;
}

// This thread's CPU time: the machine may be shared, and a producer that is
// descheduled is not paying for recording.
int64_t ThreadCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

template <class Body>
double TimePerIteration(Body body, int iterations) {
  int64_t start = ThreadCpuNanos();
  for (int i = 0; i < iterations; ++i) body(i);
  return double(ThreadCpuNanos() - start) / iterations;
}

// CPU ns per call of body(i), in batches that fit the recorder's buffer, with
// a Flush between batches (not timed) so that no event is lost.
template <class Body>
double TimeInBatches(Recorder& r, Body body, int batches, int per_batch) {
  int64_t cpu = 0;
  for (int b = 0; b < batches; ++b) {
    int64_t start = ThreadCpuNanos();
    for (int i = 0; i < per_batch; ++i) body(i);
    cpu += ThreadCpuNanos() - start;
    (void)r.Flush();
  }
  return double(cpu) / (double(batches) * per_batch);
}

void RecordPair(Recorder& r, DeviceId d, int i) {
  r.RequestSubmitted(d, RequestOp::kTransmit, 64);
  r.RequestCompleted(d, RequestOp::kTransmit, 64, i, RequestOutcome::kOk);
}

double OffPairNs() {
  auto& b = Baselines();
  if (!b.contains("off")) {
    Recorder& off = Recorder::Off();
    b["off"] = TimePerIteration(
        [&](int i) {
          RecordPair(off, 0, i);
          benchmark::ClobberMemory();
        },
        20'000'000);
  }
  return b["off"];
}

void BM_HotPath(benchmark::State& state) {
  const bool on = state.range(0) != 0;
  std::unique_ptr<LiveRecorder> live = on ? std::make_unique<LiveRecorder>("hot") : nullptr;
  Recorder& r = on ? *live->rec : Recorder::Off();
  DeviceId d = on ? live->device : 0;
  int i = 0;
  for (auto _ : state) {
    RecordPair(r, d, i++);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * 2);
  if (on) state.counters["lost"] = double(r.lost_events());
  state.SetLabel(on ? "recording on" : "recording off");
}

// A stand-in for the cheapest real request: copy a 64-byte frame into a ring
// of pool buffers and bump a counter.
struct FakePath {
  alignas(64) unsigned char pool[256][64];
  unsigned char frame[64] = {1};
  uint64_t sent = 0;
  void Send(int i) {
    std::memcpy(pool[i & 255], frame, sizeof frame);
    ++sent;
    benchmark::DoNotOptimize(pool);
  }
};

double RequestNs(Recorder& r, DeviceId d, FakePath& path) {
  return TimeInBatches(
      r,
      [&](int i) {
        r.RequestSubmitted(d, RequestOp::kTransmit, 64);
        path.Send(i);
        r.RequestCompleted(d, RequestOp::kTransmit, 64, 0, RequestOutcome::kOk);
      },
      200, kBatchPairs);
}

void BM_Request(benchmark::State& state) {
  const bool on = state.range(0) != 0;
  std::unique_ptr<LiveRecorder> live = on ? std::make_unique<LiveRecorder>("req") : nullptr;
  Recorder& r = on ? *live->rec : Recorder::Off();
  DeviceId d = on ? live->device : 0;
  auto path = std::make_unique<FakePath>();
  int i = 0;
  for (auto _ : state) {
    r.RequestSubmitted(d, RequestOp::kTransmit, 64);
    path->Send(i++);
    r.RequestCompleted(d, RequestOp::kTransmit, 64, 0, RequestOutcome::kOk);
  }
  state.SetItemsProcessed(state.iterations());
  if (!on) return;
  // Same-run ratio: both variants timed back to back here.
  auto off_path = std::make_unique<FakePath>();
  double off_ns = RequestNs(Recorder::Off(), 0, *off_path);
  double on_ns = RequestNs(r, d, *path);
  state.counters["req_off_ns"] = off_ns;
  state.counters["req_on_ns"] = on_ns;
  state.counters["vs_off"] = on_ns / off_ns;
  state.counters["lost"] = double(r.lost_events());
}

void BM_HotPathRatio(benchmark::State& state) {
  LiveRecorder live("ratio");
  double off_ns = OffPairNs();
  double on_ns = 0;
  for (auto _ : state)
    on_ns = TimeInBatches(
        *live.rec,
        [&](int i) {
          RecordPair(*live.rec, live.device, i);
          benchmark::ClobberMemory();
        },
        200, kBatchPairs);
  double given_ns = TimeInBatches(
      *live.rec,
      [&](int i) {
        int64_t now = MonotonicNanos();
        live.rec->RequestSubmitted(live.device, RequestOp::kTransmit, 64, now);
        live.rec->RequestCompleted(live.device, RequestOp::kTransmit, 64, i, RequestOutcome::kOk, now);
        benchmark::ClobberMemory();
      },
      200, kBatchPairs);
  double clock_ns = TimePerIteration([](int) { benchmark::DoNotOptimize(MonotonicNanos()); }, 2'000'000);
  state.counters["clock_read_ns"] = clock_ns;
  // Two events sharing one clock read the caller made anyway.
  state.counters["shared_clock_ns_per_event"] = (given_ns - clock_ns) / 2;
  state.counters["off_ns_per_event"] = off_ns / 2;
  state.counters["on_ns_per_event"] = on_ns / 2;
  state.counters["vs_off"] = on_ns / off_ns;
  state.counters["lost"] = double(live.rec->lost_events());
}

int64_t ProcessCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void BM_Sustained(benchmark::State& state) {
  const int producers = static_cast<int>(state.range(0));
  constexpr uint64_t kPerThread = 1'000'000;
  uint64_t written = 0, lost = 0, bytes = 0;
  int64_t elapsed = 0, writer_cpu = 0;
  for (auto _ : state) {
    LiveRecorder live("sustained", 1 << 20);
    uint64_t before = live.rec->recorded_events();
    std::atomic<int64_t> producer_cpu{0};
    int64_t cpu_start = ProcessCpuNanos();
    int64_t start = MonotonicNanos();
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
      threads.emplace_back([&] {
        int64_t t0 = ThreadCpuNanos();
        for (uint64_t i = 0; i < kPerThread; ++i)
          live.rec->RequestCompleted(live.device, RequestOp::kWrite, 4096, int64_t(i), RequestOutcome::kOk);
        producer_cpu += ThreadCpuNanos() - t0;
      });
    for (auto& t : threads) t.join();
    (void)live.rec->Flush();
    elapsed += MonotonicNanos() - start;
    // What is left is (almost all) the writer thread's.
    writer_cpu += ProcessCpuNanos() - cpu_start - producer_cpu.load();
    written += live.rec->recorded_events() - before;
    lost += live.rec->lost_events();
    bytes += std::filesystem::file_size(live.path);
  }
  state.counters["events_per_s"] = double(written) * 1e9 / double(elapsed);
  state.counters["writer_cpu_ns_per_event"] = written ? double(writer_cpu) / double(written) : 0;
  state.counters["lost"] = double(lost);
  state.counters["bytes_per_event"] = written ? double(bytes) / double(written) : 0;
  state.SetItemsProcessed(int64_t(written));
}

BENCHMARK(BM_HotPath)->Arg(0)->Arg(1);
BENCHMARK(BM_HotPathRatio)->Iterations(3);
BENCHMARK(BM_Request)->Arg(0)->Arg(1);
BENCHMARK(BM_Sustained)->Arg(1)->Arg(2)->Iterations(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace umbra::recorder

BENCHMARK_MAIN();
