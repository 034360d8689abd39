// Runtime core benchmarks, each reported as a ratio against a baseline
// measured in the same run:
//   1. one request outstanding: isolated echo driver (rings + doorbells) vs the
//      same driver called in-process;
//   2. batched throughput of the rings;
//   3. crash → serving again, vs the bare spawn + handshake + probe of the same
//      binary; and the same with a warm standby.
//
//   build/default/bench/runtime/runtime_bench [--quick] [--samples] [--crashes-only] [--crashes=N]
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "drivers/echo/echo_driver.h"
#include "drivers/sdk/in_process.h"
#include "base/clock.h"
#include "runtime/supervisor/supervisor.h"

#include <spdlog/spdlog.h>

namespace {

using namespace umbra;
using runtime::Completion;
using runtime::DriverHost;
using runtime::Request;

constexpr int64_t kSec = 1'000'000'000;

struct Stats {
  double median, p99;
};

Stats Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)]};
}

runtime::DriverHostOptions EchoOptions(const std::string& name) {
  runtime::DriverHostOptions o;
  o.device_name = name;
  o.driver_binary = "umbra-driver-echo";
  o.data = {.ring_entries = 256, .buffer_size = 2048, .buffer_count = 256};
  o.restart.budget = 100000;
  o.restart.backoff_initial_ns = 0;
  return o;
}

// ns per request, one outstanding, through the in-process driver.
Stats InProcessCall(int n) {
  sdk::InProcessRunner run(std::make_unique<drivers::EchoDriver>(), {});
  (void)run.Probe();
  std::vector<double> samples;
  ipc::Descriptor d{.id = 1, .op = drivers::EchoDriver::kNop};
  for (int s = 0; s < 50; ++s) {
    const int64_t t0 = MonotonicNanos();
    for (int i = 0; i < n; ++i) {
      run.Submit(d);
      run.completions().clear();
    }
    samples.push_back(double(MonotonicNanos() - t0) / n);
  }
  return Summarize(samples);
}

Stats RoundTrip(DriverHost& h, int n) {
  std::vector<double> samples;
  Request r{.op = drivers::EchoDriver::kNop};
  Completion c;
  for (int i = 0; i < n; ++i) {
    const int64_t t0 = MonotonicNanos();
    (void)h.Submit({&r, 1});
    while (h.Wait({&c, 1}, kSec) == 0) {}
    samples.push_back(double(MonotonicNanos() - t0));
  }
  return Summarize(samples);
}

double BatchedThroughput(DriverHost& h, int64_t total) {
  std::vector<Request> reqs(128, Request{.op = drivers::EchoDriver::kNop});
  Completion out[256];
  int64_t done = 0, sent = 0;
  const int64_t t0 = MonotonicNanos();
  while (done < total) {
    if (sent - done < 128) {
      auto n = h.Submit(reqs);
      if (n) sent += static_cast<int64_t>(*n);
    }
    done += static_cast<int64_t>(h.Poll(out));
  }
  return double(total) / (double(MonotonicNanos() - t0) / 1e9);
}

double InProcessThroughput(int64_t total) {
  sdk::InProcessRunner run(std::make_unique<drivers::EchoDriver>(), {});
  ipc::Descriptor d{.id = 1, .op = drivers::EchoDriver::kNop};
  const int64_t t0 = MonotonicNanos();
  for (int64_t i = 0; i < total; ++i) {
    run.Submit(d);
    if (run.completions().size() >= 128) run.completions().clear();
  }
  return double(total) / (double(MonotonicNanos() - t0) / 1e9);
}

bool g_samples = false;  // --samples: print every crash sample

// Start → running: spawn, Hello, Attach, Probe of a fresh device.
Stats SpawnFloor(runtime::Supervisor& sup, int n) {
  std::vector<double> samples;
  for (int i = 0; i < n; ++i) {
    auto h = sup.AddDevice(EchoOptions("floor" + std::to_string(i)));
    const int64_t t0 = MonotonicNanos();
    (*h)->Start();
    (void)(*h)->WaitUntilRunning(10 * kSec);
    samples.push_back(double(MonotonicNanos() - t0));
    (*h)->Shutdown();
  }
  return Summarize(samples);
}

// Kill the driver; time until a request is served by the next one.
Stats CrashToServing(DriverHost& h, int n, bool standby, int sig = SIGKILL) {
  std::vector<double> samples, detect, recover;
  Request r{.op = drivers::EchoDriver::kNop};
  Completion c;
  for (int i = 0; i < n; ++i) {
    if (standby) {
      // Let the standby (spawned 50 ms after a recovery) finish its handshake,
      // as it would between real faults.
      struct timespec ts {
        0, 100'000'000
      };
      nanosleep(&ts, nullptr);
    }
    // The device is in use when it crashes: 1 ms of requests first, so the
    // fault does not also measure how long idle virtual CPUs take to wake.
    const int64_t busy_until = MonotonicNanos() + 1'000'000;
    while (MonotonicNanos() < busy_until) {
      auto sent = h.Submit({&r, 1});
      if (sent && *sent == 1) (void)h.Wait({&c, 1}, kSec);
    }
    const int64_t t0 = MonotonicNanos();
    h.Kill(sig);
    // Poll with naps: a client spinning here would hold one of the two cores
    // that the driver, the standby and the host's loop need.
    // (The host keeps the last 64 detections, so look at the newest one's
    // time; and at the state first, which takes no lock the host needs.)
    auto detected = [&] {
      if (h.state() != runtime::DeviceState::kRunning) return true;
      const auto d = h.detections();
      return !d.empty() && d.back().at_ns >= t0;
    };
    while (!detected()) {
      struct timespec nap {
        0, 20000
      };
      nanosleep(&nap, nullptr);
    }
    for (;;) {
      auto sent = h.Submit({&r, 1});
      if (sent && *sent == 1) {
        if (h.Wait({&c, 1}, kSec) == 1 && c.status == 0) break;
      }
      (void)h.WaitUntilRunning(10 * kSec);
    }
    samples.push_back(double(MonotonicNanos() - t0));
    detect.push_back(double(h.detections().back().at_ns - t0));
    recover.push_back(double(h.stats().last_recovery_ns));
    if (g_samples) {
      std::printf("      %s sig %d: total %.3f ms, detection %.3f ms (%s), detect->ready %.3f ms\n",
                  standby ? "warm" : "cold", sig, samples.back() / 1e6, detect.back() / 1e6,
                  h.detections().back().ToString().c_str(), recover.back() / 1e6);
    }
  }
  Stats ds = Summarize(detect), rs = Summarize(recover);
  std::printf("    (%s: detection median %.3f ms, detect->ready median %.3f ms)\n", standby ? "warm" : "cold",
              ds.median / 1e6, rs.median / 1e6);
  return Summarize(samples);
}

// --crashes-only: the crash rows alone (with --crashes=N samples each).
int CrashesOnly(runtime::Supervisor& sup, int n) {
  Stats floor = SpawnFloor(sup, 10);
  auto warm_opts = EchoOptions("warm0");
  warm_opts.warm_standby = true;
  auto warm = sup.AddDevice(warm_opts);
  (*warm)->Start();
  (void)(*warm)->WaitUntilRunning(10 * kSec);
  Stats warm_crash = CrashToServing(**warm, n, true);
  Stats warm_segv = CrashToServing(**warm, n, true, SIGSEGV);
  std::printf("%-44s %10.3f ms %10.3f ms %10s\n", "spawn+handshake+probe floor (baseline)", floor.median / 1e6,
              floor.p99 / 1e6, "1.00x");
  std::printf("%-44s %10.3f ms %10.3f ms %9.2fx\n", "crash -> serving again, warm standby", warm_crash.median / 1e6,
              warm_crash.p99 / 1e6, warm_crash.median / floor.median);
  std::printf("%-44s %10.3f ms %10.3f ms %9.2fx\n", "  same, the driver segfaults (it reports)", warm_segv.median / 1e6,
              warm_segv.p99 / 1e6, warm_segv.median / floor.median);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  bool crashes_only = false;
  int crash_n = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    if (std::strcmp(argv[i], "--samples") == 0) g_samples = true;
    if (std::strcmp(argv[i], "--crashes-only") == 0) crashes_only = true;
    if (std::strncmp(argv[i], "--crashes=", 10) == 0) crash_n = std::atoi(argv[i] + 10);
  }
  const int rt_n = quick ? 2000 : 50000;
  if (crash_n <= 0) crash_n = quick ? 20 : 200;
  spdlog::set_level(spdlog::level::warn);
  runtime::Supervisor sup;
  auto echo = sup.AddDevice(EchoOptions("echo0"));
  (*echo)->Start();
  if (!(*echo)->WaitUntilRunning(10 * kSec)) return 1;

  if (crashes_only) return CrashesOnly(sup, crash_n);

  Stats inproc = InProcessCall(100000);
  Stats rt = RoundTrip(**echo, rt_n);
  std::printf("%-44s %12s %12s %10s\n", "benchmark", "median", "p99", "ratio");
  std::printf("%-44s %10.1f ns %10.1f ns %10s\n", "in-process call (baseline)", inproc.median, inproc.p99, "1.0x");
  std::printf("%-44s %10.1f ns %10.1f ns %9.0fx\n", "isolated ring round trip, 1 outstanding", rt.median, rt.p99,
              rt.median / inproc.median);

  const int64_t batch_total = quick ? 2'000'000 : 20'000'000;
  double inproc_tp = InProcessThroughput(batch_total);
  double ring_tp = BatchedThroughput(**echo, batch_total);
  std::printf("%-44s %10.2f M/s %24s\n", "in-process throughput (baseline)", inproc_tp / 1e6, "1.00x");
  std::printf("%-44s %10.2f M/s %23.2fx\n", "isolated batched throughput", ring_tp / 1e6, ring_tp / inproc_tp);

  Stats floor = SpawnFloor(sup, quick ? 10 : 50);
  Stats crash = CrashToServing(**echo, crash_n, false);
  auto warm_opts = EchoOptions("warm0");
  warm_opts.warm_standby = true;
  auto warm = sup.AddDevice(warm_opts);
  (*warm)->Start();
  (void)(*warm)->WaitUntilRunning(10 * kSec);
  Stats warm_crash = CrashToServing(**warm, crash_n, true);
  Stats warm_segv = CrashToServing(**warm, crash_n, true, SIGSEGV);
  std::printf("%-44s %10.3f ms %10.3f ms %10s\n", "spawn+handshake+probe floor (baseline)", floor.median / 1e6,
              floor.p99 / 1e6, "1.00x");
  std::printf("%-44s %10.3f ms %10.3f ms %9.2fx\n", "crash -> serving again", crash.median / 1e6, crash.p99 / 1e6,
              crash.median / floor.median);
  std::printf("%-44s %10.3f ms %10.3f ms %9.2fx\n", "crash -> serving again, warm standby", warm_crash.median / 1e6,
              warm_crash.p99 / 1e6, warm_crash.median / floor.median);
  std::printf("%-44s %10.3f ms %10.3f ms %9.2fx\n", "  same, the driver segfaults (it reports)", warm_segv.median / 1e6,
              warm_segv.p99 / 1e6, warm_segv.median / floor.median);
  return 0;
}
