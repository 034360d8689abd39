// `umbra demo`: the smallest end-to-end crash-and-recover run.
//
// An echo driver in its own process serves a stream of requests while it is
// made to die in each way a driver dies (a segfault, abort, SIGKILL, exit and a
// hang); the host detects each death, restarts the driver and keeps serving.
// Prints one line per fault: how it was detected, how long detection and
// recovery took, and that the device served again.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "drivers/echo/echo_driver.h"
#include "base/clock.h"
#include "runtime/supervisor/supervisor.h"

namespace umbra::cli {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;

struct Fault {
  const char* name;
  int signal;
};

bool ServeOne(runtime::DriverHost& h) {
  auto buf = h.AllocBuffer();
  if (!buf) return false;
  std::byte* p = h.buffer(*buf);
  for (int i = 0; i < 64; ++i) p[i] = std::byte(i);
  runtime::Request r{.op = drivers::EchoDriver::kEcho, .offset = *buf, .length = 64, .capacity = 64};
  bool ok = false;
  auto sent = h.Submit({&r, 1});
  runtime::Completion c;
  if (sent && *sent == 1 && h.Wait({&c, 1}, kSec) == 1 && c.status == 0) {
    ok = true;
    for (int i = 0; i < 64; ++i) ok = ok && p[i] == ~std::byte(i);
  }
  h.FreeBuffer(*buf);
  return ok;
}

}  // namespace

int RunEchoDemo() {
  spdlog::set_level(spdlog::level::warn);
  runtime::Supervisor sup;
  runtime::DriverHostOptions o;
  o.device_name = "echo0";
  o.compatible = "umbra,echo";
  o.device_class = "echo";
  o.driver_binary = "umbra-driver-echo";
  o.heartbeat_period_ns = 20 * kMs;
  auto host = sup.AddDevice(o);
  if (!host) {
    std::fprintf(stderr, "umbra demo: %s\n", host.error().ToString().c_str());
    return kExitSoftware;
  }
  runtime::DriverHost& h = **host;
  h.Start();
  if (auto r = h.WaitUntilRunning(5 * kSec); !r) {
    std::fprintf(stderr, "umbra demo: %s\n", r.error().ToString().c_str());
    return kExitSoftware;
  }
  std::printf("echo0: driver running in process %d\n\n", h.driver_pid());
  std::printf("%-10s %-36s %12s %12s %8s\n", "fault", "detected as", "detect ms", "recover ms", "serving");
  const std::vector<Fault> faults = {
      {"SIGSEGV", SIGSEGV}, {"SIGABRT", SIGABRT}, {"SIGKILL", SIGKILL}, {"SIGBUS", SIGBUS}, {"hang", SIGSTOP}};
  int failures = 0;
  for (const Fault& f : faults) {
    for (int i = 0; i < 100 && !ServeOne(h); ++i) {}
    const size_t before = h.detections().size();
    const int64_t t0 = MonotonicNanos();
    h.Kill(f.signal);
    while (h.detections().size() == before && MonotonicNanos() - t0 < 5 * kSec) CpuRelax();
    // Serving again: the first request through the new driver (retried
    // while the driver is still being brought back).
    bool serving = false;
    for (int i = 0; i < 500 && !serving; ++i) {
      (void)h.WaitUntilRunning(5 * kSec);
      serving = ServeOne(h);
      if (!serving) usleep(10'000);
    }
    failures += !serving;
    auto d = h.detections();
    std::string how = d.size() > before ? d.back().ToString() : "not detected";
    if (how.size() > 36) how.resize(36);
    const double detect_ms = d.size() > before ? double(d.back().at_ns - t0) / 1e6 : -1;
    std::printf("%-10s %-36s %12.2f %12.2f %8s\n", f.name, how.c_str(), detect_ms,
                double(h.stats().last_recovery_ns) / 1e6, serving ? "yes" : "NO");
  }
  auto s = h.stats();
  std::printf("\n%lu restarts, %lu requests completed, %lu interrupted, %lu protocol violations\n",
              (unsigned long)s.restarts, (unsigned long)s.requests_completed, (unsigned long)s.requests_interrupted,
              (unsigned long)s.protocol_violations);
  return failures == 0 ? kExitOk : kExitNotRecovered;
}

}  // namespace umbra::cli
