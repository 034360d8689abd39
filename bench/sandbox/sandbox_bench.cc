// What the driver sandbox costs, each figure a ratio against the same thing
// without a sandbox measured in the same run (samples interleaved, so that
// the machine's drift hits both alike):
//   1. cold spawn -> ready (spawn, Hello, Attach, Probe) of the echo driver,
//      with the whole sandbox and with each part alone on top of the
//      unprivileged uid + seccomp, to show where the cost is;
//   2. warm-standby crash -> serving again, sandbox on (and off);
//   3. ring round trip, one outstanding, and batched throughput.
//
//   build/default/bench/sandbox/sandbox_bench [--quick] [--data-only] [--verbose]
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "base/clock.h"
#include "runtime/sandbox/cgroup.h"
#include "runtime/supervisor/spawn.h"
#include "runtime/supervisor/supervisor.h"

namespace {

using namespace umbra;
using runtime::Completion;
using runtime::DriverHost;
using runtime::Request;

constexpr int64_t kSec = 1'000'000'000;
bool g_verbose = false;           // --verbose: every round of the data-path figures
constexpr uint16_t kEchoNop = 2;  // drivers/echo kNop: completes at once

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Variant {
  const char* name;
  sandbox::SandboxOptions options;
};

std::vector<Variant> Variants() {
  sandbox::SandboxOptions off{.mode = sandbox::SandboxMode::kOff};
  sandbox::SandboxOptions full{};
  sandbox::SandboxOptions bare{.pid_namespace = false,
                               .mount_namespace = false,
                               .net_namespace = false,
                               .ipc_namespace = false,
                               .cgroup = false};
  auto with = [&](auto set) {
    sandbox::SandboxOptions o = bare;
    set(o);
    return o;
  };
  return {
      {"no sandbox (baseline)", off},
      {"whole sandbox", full},
      {"  uid + no_new_privs + seccomp + rlimits", bare},
      {"  ... + PID namespace", with([](auto& o) { o.pid_namespace = true; })},
      {"  ... + mount namespace, read-only root", with([](auto& o) { o.mount_namespace = true; })},
      {"  ... + network namespace", with([](auto& o) { o.net_namespace = true; })},
      {"  ... + IPC namespace", with([](auto& o) { o.ipc_namespace = true; })},
      {"  ... + cgroup", with([](auto& o) { o.cgroup = true; })},
  };
}

runtime::DriverHostOptions EchoOptions(const std::string& name, const sandbox::SandboxOptions& s) {
  runtime::DriverHostOptions o;
  o.device_name = name;
  o.driver_binary = "umbra-driver-echo";
  o.data = {.ring_entries = 256, .buffer_size = 2048, .buffer_count = 256};
  o.restart.budget = 100000;
  o.restart.backoff_initial_ns = 0;
  o.sandbox = s;
  return o;
}

double SpawnOnce(runtime::Supervisor& sup, const std::string& name, const sandbox::SandboxOptions& s) {
  auto h = sup.AddDevice(EchoOptions(name, s));
  if (!h) return 0;
  const int64_t t0 = MonotonicNanos();
  (*h)->Start();
  if (!(*h)->WaitUntilRunning(10 * kSec)) {
    std::fprintf(stderr, "%s did not start\n", name.c_str());
    return 0;
  }
  const double ns = double(MonotonicNanos() - t0);
  (*h)->Shutdown();
  return ns;
}

void ColdSpawn(runtime::Supervisor& sup, int n) {
  const auto variants = Variants();
  std::vector<std::vector<double>> samples(variants.size());
  for (int i = 0; i < n; ++i) {
    for (size_t v = 0; v < variants.size(); ++v) {
      samples[v].push_back(SpawnOnce(sup, "spawn" + std::to_string(v) + "." + std::to_string(i), variants[v].options));
    }
  }
  const double base = Median(samples[0]);
  std::printf("%-46s %10s %8s\n", "cold spawn -> ready", "median", "ratio");
  for (size_t v = 0; v < variants.size(); ++v) {
    const double m = Median(samples[v]);
    std::printf("%-46s %7.3f ms %7.2fx\n", variants[v].name, m / 1e6, m / base);
  }
}

// The launcher alone: clone, sandbox, exec (the call returns once the child
// has exec'd), without the driver's own start-up. Each child is killed and
// reaped outside the timing.
void LaunchOnly(int n) {
  const auto variants = Variants();
  const std::string binary = *runtime::FindDriverBinary("umbra-driver-echo");
  std::vector<std::vector<double>> samples(variants.size());
  for (int i = 0; i < n; ++i) {
    for (size_t v = 0; v < variants.size(); ++v) {
      int sv[2];
      socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
      const auto& o = variants[v].options;
      std::unique_ptr<sandbox::InstanceCgroup> group;
      const int64_t t0 = MonotonicNanos();
      if (o.mode == sandbox::SandboxMode::kOn && o.cgroup) group = sandbox::InstanceCgroup::Create("bench", o.limits);
      runtime::SpawnRequest req{.binary = binary, .control_fd = sv[1], .sandbox = &o, .cgroup = group.get()};
      auto p = runtime::SpawnDriver(req);
      samples[v].push_back(double(MonotonicNanos() - t0));
      if (p) {
        syscall(SYS_pidfd_send_signal, p->pidfd.get(), SIGKILL, nullptr, 0);
        siginfo_t info;
        waitid(P_PIDFD, static_cast<id_t>(p->pidfd.get()), &info, WEXITED);
      }
      group.reset();
      close(sv[0]);
      close(sv[1]);
    }
  }
  const double base = Median(samples[0]);
  std::printf("%-46s %10s %8s\n", "launch only (clone/spawn until exec)", "median", "ratio");
  for (size_t v = 0; v < variants.size(); ++v) {
    const double m = Median(samples[v]);
    std::printf("%-46s %7.3f ms %7.2fx\n", variants[v].name, m / 1e6, m / base);
  }
}

// Kill the driver with a warm standby ready; time until a request is served.
double WarmCrashToServing(DriverHost& h, int n) {
  std::vector<double> samples;
  Request r{.op = kEchoNop};
  Completion c;
  for (int i = 0; i < n; ++i) {
    struct timespec ts {
      0, 100'000'000
    };  // the standby is spawned 50 ms after a recovery
    nanosleep(&ts, nullptr);
    const int64_t t0 = MonotonicNanos();
    h.Kill(SIGKILL);
    while (true) {
      auto sent = h.Submit({&r, 1});
      if (sent && *sent == 1 && h.Wait({&c, 1}, kSec) == 1 && c.status == 0) break;
    }
    samples.push_back(double(MonotonicNanos() - t0));
  }
  return Median(samples);
}

double RoundTrip(DriverHost& h, int n) {
  std::vector<double> samples;
  Request r{.op = kEchoNop};
  Completion c;
  for (int i = 0; i < n; ++i) {
    const int64_t t0 = MonotonicNanos();
    auto sent = h.Submit({&r, 1});
    if (!sent || *sent != 1) {  // recovering: not a sample
      (void)h.WaitUntilRunning(10 * kSec);
      continue;
    }
    while (h.Wait({&c, 1}, kSec) == 0) {}
    samples.push_back(double(MonotonicNanos() - t0));
  }
  return Median(samples);
}

double Throughput(DriverHost& h, int64_t total) {
  std::vector<Request> reqs(128, Request{.op = kEchoNop});
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

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  bool data_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    if (std::strcmp(argv[i], "--verbose") == 0) g_verbose = true;
    if (std::strcmp(argv[i], "--data-only") == 0) data_only = true;
  }
  spdlog::set_level(spdlog::level::err);
  runtime::Supervisor sup;
  if (!data_only) {
    LaunchOnly(quick ? 20 : 100);
    ColdSpawn(sup, quick ? 10 : 40);
  }

  const sandbox::SandboxOptions on{};
  const sandbox::SandboxOptions off{.mode = sandbox::SandboxMode::kOff};
  auto warm_on_opts = EchoOptions("warm-on", on);
  auto warm_off_opts = EchoOptions("warm-off", off);
  warm_on_opts.warm_standby = warm_off_opts.warm_standby = true;
  DriverHost& warm_on = **sup.AddDevice(warm_on_opts);
  DriverHost& warm_off = **sup.AddDevice(warm_off_opts);
  warm_on.Start();
  warm_off.Start();
  (void)warm_on.WaitUntilRunning(10 * kSec);
  (void)warm_off.WaitUntilRunning(10 * kSec);
  if (!data_only) {
    const int crashes = quick ? 20 : 100;
    const double crash_off = WarmCrashToServing(warm_off, crashes);
    const double crash_on = WarmCrashToServing(warm_on, crashes);
    std::printf("%-46s %7.3f ms\n", "warm-standby crash -> serving, no sandbox", crash_off / 1e6);
    std::printf("%-46s %7.3f ms %7.2fx\n", "warm-standby crash -> serving, sandbox on", crash_on / 1e6,
                crash_on / crash_off);
  }

  // Rounds alternate off and on, so that the machine's drift hits both.
  const int rounds = quick ? 5 : 21;
  const int rt_n = quick ? 2000 : 5000;
  const int64_t batch = quick ? 200'000 : 500'000;
  std::vector<double> rt_ratio, tp_ratio, rt_off, rt_on, tp_off, tp_on;
  for (int r = 0; r < rounds; ++r) {
    rt_off.push_back(RoundTrip(warm_off, rt_n));
    rt_on.push_back(RoundTrip(warm_on, rt_n));
    tp_off.push_back(Throughput(warm_off, batch));
    tp_on.push_back(Throughput(warm_on, batch));
    rt_ratio.push_back(rt_off.back() / rt_on.back());
    tp_ratio.push_back(tp_on.back() / tp_off.back());
    if (g_verbose) {
      std::printf("  round %d: round trip %.0f / %.0f ns, throughput %.2f / %.2f M/s\n", r, rt_off.back(), rt_on.back(),
                  tp_off.back() / 1e6, tp_on.back() / 1e6);
    }
  }
  std::printf("%-46s %7.0f ns / %7.0f ns  sandboxed/unsandboxed speed %.2fx\n", "ring round trip (off / on)",
              Median(rt_off), Median(rt_on), Median(rt_ratio));
  std::printf("%-46s %7.2f M/s / %5.2f M/s  sandboxed/unsandboxed %.2fx\n", "batched throughput (off / on)",
              Median(tp_off) / 1e6, Median(tp_on) / 1e6, Median(tp_ratio));
  warm_on.Shutdown();
  warm_off.Shutdown();
  return 0;
}
