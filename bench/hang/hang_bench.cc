// Hang detection: how soon a hung driver is caught, quiet and under a
// saturated CPU, and how often a healthy driver is wrongly called hung under
// that load. The watchdog judges a driver by its own time (wall time less its
// wait for a CPU, runtime/supervisor/cpu_time.h); the baseline is the
// heartbeat period it works from: two periods is the target.
//
//   build/default/bench/hang/hang_bench [--hangs=N] [--seconds=S] [--period-ms=P]
//
// Rows: detection latency (request sent to the hang → detected) of a driver
// that spins (failpoint `hang`) and one that blocks for good (`deadlock`),
// quiet and with twice as many busy threads as CPUs; then false detections
// of a healthy driver serving an echo every 10 ms for S seconds under that
// load, per hour.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "drivers/echo/echo_driver.h"
#include "base/clock.h"
#include "runtime/supervisor/supervisor.h"

namespace {

using namespace umbra;
using runtime::Completion;
using runtime::DriverHost;
using runtime::Request;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;

struct Stats {
  double median = 0, p99 = 0;
  size_t missed = 0;  // hangs not detected within 10 s
};

runtime::DriverHostOptions EchoOptions(const std::string& name, int64_t period_ns) {
  runtime::DriverHostOptions o;
  o.device_name = name;
  o.driver_binary = "umbra-driver-echo";
  o.heartbeat_period_ns = period_ns;
  o.request_deadline_ns = 60 * kSec;  // only the heartbeat sees a hang
  o.restart.budget = 100000;
  o.restart.backoff_initial_ns = 0;
  o.warm_standby = true;
  return o;
}

// Twice as many busy threads as CPUs (at least four), while it lives.
class Load {
 public:
  Load() {
    const unsigned n = std::max(4u, 2 * std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        volatile uint64_t x = 0;
        while (!stop_.load(std::memory_order_relaxed)) x = x + 1;
      });
    }
  }
  ~Load() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// One hang: arms `action` at the next request, sends it; ns from the send
// to the detection, or nullopt.
std::optional<int64_t> OneHang(DriverHost& h, const char* action) {
  if (auto set = h.SetFailpoints(std::string("sdk.request=1*") + action, 10 * kSec); !set) {
    std::fprintf(stderr, "  (not armed: %s)\n", set.error().ToString().c_str());
    return std::nullopt;
  }
  Request r{.op = drivers::EchoDriver::kNop};
  const int64_t sent = MonotonicNanos();
  if (auto n = h.Submit({&r, 1}); !n || *n != 1) {
    std::fprintf(stderr, "  (not submitted: %s)\n", n ? "ring full" : n.error().ToString().c_str());
    return std::nullopt;
  }
  Completion c;
  (void)h.Wait({&c, 1}, 10 * kSec);
  // The host keeps the latest 64 detections: look for the one after `sent`.
  std::optional<int64_t> latency;
  for (const auto& d : h.detections()) {
    if (d.at_ns >= sent) {
      latency = d.at_ns - sent;
      break;
    }
  }
  if (!latency) {
    std::fprintf(stderr, "  (no detection within 10 s; completion status %d)\n", c.status);
  }
  (void)h.WaitUntilRunning(10 * kSec);
  (void)h.SetFailpoints("sdk.request=off", 10 * kSec);
  usleep(60'000);  // the next standby is ready
  return latency;
}

Stats Hangs(DriverHost& h, const char* action, int n) {
  std::vector<double> v;
  Stats s;
  for (int i = 0; i < n; ++i) {
    if (auto ns = OneHang(h, action)) {
      v.push_back(double(*ns));
    } else {
      ++s.missed;
    }
  }
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.median = v[v.size() / 2];
  s.p99 = v[std::min(v.size() - 1, v.size() * 99 / 100)];
  return s;
}

// Healthy echo traffic for `seconds` under load: detections (all false).
size_t FalseDetections(DriverHost& h, double seconds) {
  const uint64_t before = h.stats().restarts;
  const int64_t end = MonotonicNanos() + static_cast<int64_t>(seconds * 1e9);
  const uint32_t buf = *h.AllocBuffer();
  while (MonotonicNanos() < end) {
    Request r{.op = drivers::EchoDriver::kEcho, .offset = buf, .length = 16, .capacity = 16};
    if (auto n = h.Submit({&r, 1}); n && *n == 1) {
      Completion c;
      (void)h.Wait({&c, 1}, 5 * kSec);
    } else {
      (void)h.WaitUntilRunning(5 * kSec);
    }
    usleep(10'000);
  }
  h.FreeBuffer(buf);
  return h.stats().restarts - before;
}

void Row(const char* name, const Stats& s, double period_ns) {
  std::printf("%-40s %9.1f ms %9.1f ms %8.2fx %7zu\n", name, s.median / 1e6, s.p99 / 1e6, s.median / period_ns,
              s.missed);
}

}  // namespace

int main(int argc, char** argv) {
  int hangs = 20;
  double seconds = 60;
  int64_t period = 10 * kMs;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--hangs=", 8) == 0) hangs = std::atoi(argv[i] + 8);
    if (std::strncmp(argv[i], "--seconds=", 10) == 0) seconds = std::atof(argv[i] + 10);
    if (std::strncmp(argv[i], "--period-ms=", 12) == 0) period = std::atoll(argv[i] + 12) * kMs;
  }
  spdlog::set_level(spdlog::level::err);
  runtime::Supervisor sup;
  auto hanging = sup.AddDevice(EchoOptions("echo0", period));
  auto healthy = sup.AddDevice(EchoOptions("echo1", period));
  if (!hanging || !healthy) return 1;
  (*hanging)->Start();
  (*healthy)->Start();
  if (!(*hanging)->WaitUntilRunning(10 * kSec) || !(*healthy)->WaitUntilRunning(10 * kSec)) return 1;
  usleep(100'000);

  std::printf("heartbeat period %.1f ms (baseline); detection target: 2 periods of the driver's own time\n",
              double(period) / 1e6);
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    char line[128] = {};
    if (std::fgets(line, sizeof line, f)) std::printf("load average before the run: %s", line);
    std::fclose(f);
  }
  std::printf("%-40s %12s %12s %9s %7s\n", "hang detection", "median", "p99", "/period", "missed");
  Row("spinning driver, quiet", Hangs(**hanging, "hang", hangs), double(period));
  Row("blocked driver, quiet", Hangs(**hanging, "deadlock", hangs), double(period));
  size_t false_hits = 0;
  {
    Load load;
    Row("spinning driver, CPU saturated", Hangs(**hanging, "hang", hangs), double(period));
    Row("blocked driver, CPU saturated", Hangs(**hanging, "deadlock", hangs), double(period));
    false_hits = FalseDetections(**healthy, seconds);
  }
  std::printf("false detections, healthy driver, CPU saturated: %zu in %.0f s = %.1f per hour\n", false_hits, seconds,
              double(false_hits) * 3600 / seconds);
  return 0;
}
