// Saturating both cores for 30 s must not make a healthy driver look hung,
// and must not hide a real hang: the watchdog judges a driver by its own time
// (runtime/supervisor/cpu_time.h), not the wall clock.
// Its own binary, run alone (RUN_SERIAL): it would disturb every other test.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "drivers/echo/echo_driver.h"
#include "base/clock.h"
#include "runtime/supervisor/supervisor.h"

namespace umbra::runtime {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;

bool EchoOnce(DriverHost& h) {
  auto buf = h.AllocBuffer();
  if (!buf) return false;
  std::memset(h.buffer(*buf), 0x5a, 16);
  Request r{.op = drivers::EchoDriver::kEcho, .offset = *buf, .length = 16, .capacity = 16};
  bool ok = false;
  if (auto n = h.Submit({&r, 1}); n && *n == 1) {
    Completion c;
    ok = h.Wait({&c, 1}, 5 * kSec) == 1 && c.status == 0;
  }
  h.FreeBuffer(*buf);
  return ok;
}

DriverHostOptions EchoOptions(const char* name) {
  DriverHostOptions o;
  o.device_name = name;
  o.driver_binary = UMBRA_ECHO_DRIVER;
  o.heartbeat_period_ns = 10 * kMs;
  o.request_deadline_ns = 2 * kSec;
  o.restart.budget = 1000;
  return o;
}

// Busy threads, twice as many as there are CPUs (at least four), until destroyed.
class Spinners {
 public:
  Spinners() {
    const unsigned n = std::max(4u, 2 * std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        volatile uint64_t x = 0;
        while (!stop_.load(std::memory_order_relaxed)) x = x + 1;
      });
    }
  }
  ~Spinners() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// Arms `spec` (a hang at the next request) and sends one request; returns
// the detection it caused, after the device is serving again.
std::optional<Detection> HangOnce(DriverHost& h, const std::string& spec) {
  const size_t before = h.detections().size();
  if (!h.SetFailpoints(spec, 10 * kSec)) return std::nullopt;
  Request r{.op = drivers::EchoDriver::kNop};
  if (auto n = h.Submit({&r, 1}); !n || *n != 1) return std::nullopt;
  Completion c;
  (void)h.Wait({&c, 1}, 20 * kSec);  // interrupted when the hang is detected
  if (!h.WaitUntilRunning(20 * kSec)) return std::nullopt;
  (void)h.SetFailpoints("sdk.request=off", 10 * kSec);
  auto d = h.detections();
  if (d.size() <= before) return std::nullopt;
  return d[before];
}

TEST(Saturation, NoFalseHangDetectionWhileBothCoresAreSaturatedAndRealHangsAreStillCaught) {
  if (std::getenv("UMBRA_SKIP_SLOW")) GTEST_SKIP() << "UMBRA_SKIP_SLOW is set";
  Supervisor sup;
  DriverHost& healthy = **sup.AddDevice(EchoOptions("echo0"));
  DriverHost& hanging = **sup.AddDevice(EchoOptions("echo1"));
  healthy.Start();
  hanging.Start();
  ASSERT_TRUE(healthy.WaitUntilRunning(10 * kSec).has_value());
  ASSERT_TRUE(hanging.WaitUntilRunning(10 * kSec).has_value());
  Spinners load;
  // A driver spinning with the CPU, and one blocked for good, while the
  // machine is saturated: both are hangs.
  std::vector<std::optional<Detection>> caught;
  std::thread hangs([&] {
    usleep(5'000'000);
    caught.push_back(HangOnce(hanging, "sdk.request=1*hang"));
    usleep(5'000'000);
    caught.push_back(HangOnce(hanging, "sdk.request=1*deadlock"));
  });
  const int64_t end = MonotonicNanos() + 30 * kSec;
  int served = 0;
  while (MonotonicNanos() < end) {
    served += EchoOnce(healthy);
    usleep(10'000);
  }
  hangs.join();
  auto d = healthy.detections();
  EXPECT_TRUE(d.empty()) << d.front().ToString();
  EXPECT_GT(served, 100);
  ASSERT_EQ(caught.size(), 2u);
  for (const auto& c : caught) {
    ASSERT_TRUE(c.has_value()) << "a hang under load was not detected";
    EXPECT_EQ(c->reason, DetectReason::kMissedHeartbeat) << c->ToString();
  }
}

}  // namespace
}  // namespace umbra::runtime
