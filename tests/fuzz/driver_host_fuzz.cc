// Fuzzes the host's side of a driver: the control-message decoder, the
// handling of every message in every phase, and the completion-ring
// consumer. Each input is played by a real driver process (replay_driver)
// against a real DriverHost, while a client submits requests and polls.
//
// What must hold, whatever the driver does: the host process survives (the
// sanitizers watch it), the client only ever gets completions for requests
// it submitted, each at most once and never longer than the buffer it gave,
// and the device ends failed or running (never wedged).
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>

#include "runtime/supervisor/driver_host.h"
#include "runtime/supervisor/supervisor.h"

namespace {

using namespace umbra::runtime;

constexpr int kRequests = 8;

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "driver_host_fuzz: %s\n", what);
  std::abort();
}

// Submits a few requests once the device runs, and checks every completion.
void Exercise(DriverHost& host) {
  std::set<uint64_t> outstanding;
  bool submitted = false;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(120);
  Completion out[16];
  while (std::chrono::steady_clock::now() < end) {
    const DeviceState s = host.state();
    if (s == DeviceState::kFailed) break;
    if (s == DeviceState::kRunning && !submitted) {
      submitted = true;
      for (uint64_t c = 1; c <= kRequests; ++c) {
        auto buf = host.AllocBuffer();
        if (!buf) break;
        Request r{.op = 1, .offset = *buf, .length = 16, .capacity = 64, .cookie = c};
        if (auto n = host.Submit({&r, 1}); n && *n == 1) outstanding.insert(c);
      }
    }
    const size_t n = host.Wait(out, 2'000'000);
    for (size_t i = 0; i < n; ++i) {
      Check(outstanding.erase(out[i].cookie) == 1, "a completion for a request not outstanding");
      Check(out[i].length <= 64, "a completion longer than its buffer");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string input = "/tmp/umbra-driver-host-fuzz." + std::to_string(getpid());
  {
    std::ofstream f(input, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  Supervisor sup;
  DriverHostOptions o{.device_name = "fuzz0",
                      .compatible = "umbra,fuzz",
                      .device_class = "echo",
                      .driver_binary = UMBRA_REPLAY_DRIVER,
                      .driver_args = {input},
                      .data = {.ring_entries = 16, .buffer_size = 256, .buffer_count = 32},
                      .heartbeat_period_ns = 20'000'000,
                      .request_deadline_ns = 60'000'000,
                      .handshake_deadline_ns = 60'000'000,
                      .probe_deadline_ns = 60'000'000,
                      .shutdown_grace_ns = 20'000'000,
                      .restart = {.budget = 0}};
  auto host = sup.AddDevice(o);
  Check(host.has_value(), "AddDevice failed");
  (*host)->Start();
  Exercise(**host);
  sup.Stop();
  return 0;
}
