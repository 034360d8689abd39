// DataPath (shadows/data_path.h) with a real echo driver process that is
// killed while requests are posted: completions reach the class, interrupted
// ones are handed back as such, and no pool buffer is lost.
#include "shadows/data_path.h"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "drivers/echo/echo_driver.h"
#include "base/clock.h"
#include "runtime/supervisor/supervisor.h"
#include "tests/shadows/kill_fixture.h"

namespace umbra::shadows {
namespace {

constexpr int64_t kSec = 1'000'000'000;
constexpr uint32_t kPayload = 64;
constexpr uint32_t kBuffers = 16;
constexpr size_t kPosted = 4;

void Fill(std::byte* p, uint64_t tag) {
  for (uint32_t i = 0; i < kPayload; ++i) p[i] = std::byte(tag * 7 + i);
}

// The smallest threaded class: keeps kPosted echo requests posted.
class PumpShadow final : public Shadow {
 public:
  explicit PumpShadow(runtime::DriverHost& host)
      : Shadow(host, Options{.class_name = "pump"}),
        path_(host, *this,
              {.submit = [this] { PostMore(); },
               .completed = [this](const runtime::Completion& c, const Posted& p) { Take(c, p); }}) {}
  ~PumpShadow() override {
    Stop();
    path_.Stop();
  }

  DataPath& path() { return path_; }
  std::atomic<uint64_t> ok{0}, interrupted{0}, wrong{0};

 private:
  void PostMore() {
    while (path_.in_flight() < kPosted) {
      auto b = host().AllocBuffer();
      if (!b) return;
      Fill(host().buffer(*b), next_tag_);
      if (!path_.Post({.op = drivers::EchoDriver::kEcho, .offset = *b, .length = kPayload, .capacity = kPayload},
                      next_tag_++)) {
        return;
      }
    }
  }
  void Take(const runtime::Completion& c, const Posted& p) {
    if (c.status == static_cast<int32_t>(Errc::kInterrupted)) {
      ++interrupted;
      return;
    }
    std::byte want[kPayload];
    Fill(want, p.tag);
    for (auto& b : want) b = ~b;
    const bool same =
        c.status == 0 && c.length == kPayload && std::memcmp(host().buffer(p.buffer), want, kPayload) == 0;
    ++(same ? ok : wrong);
  }

  DataPath path_;
  uint64_t next_tag_ = 0;  // the data-path thread only
};

bool WaitFor(const std::atomic<uint64_t>& counter, uint64_t at_least) {
  const int64_t deadline = MonotonicNanos() + 30 * kSec;  // an upper bound: a loaded machine is slow
  while (counter < at_least && MonotonicNanos() < deadline) usleep(200);
  return counter >= at_least;
}

TEST(DataPath, KeepsRequestsPostedAcrossEveryKindOfDriverDeathAndLosesNoBuffer) {
  runtime::Supervisor sup;
  runtime::DriverHostOptions o;
  o.device_name = "pump0";
  o.driver_binary = UMBRA_ECHO_DRIVER;
  o.data = {.ring_entries = 16, .buffer_size = 256, .buffer_count = kBuffers};
  o.restart.budget = 1000;
  o.restart.backoff_initial_ns = 0;
  o.request_deadline_ns = kSec / 5;  // a lost request is found sooner
  runtime::DriverHost* host = *sup.AddDevice(std::move(o));
  {
    PumpShadow s(*host);
    s.Start();
    ASSERT_TRUE(s.WaitUntilPassive(10 * kSec).has_value());
    s.path().Start("pump0");
    ASSERT_TRUE(WaitFor(s.ok, 100));
    KillFixture kill(*host, s, {});
    for (DriverFault f : kill.faults()) {
      SCOPED_TRACE(DriverFaultName(f));
      kill.KillAndRecover(f);
      ASSERT_TRUE(WaitFor(s.ok, s.ok + 50)) << "served again after the recovery";
    }
    EXPECT_EQ(s.wrong, 0u);
    EXPECT_GT(s.interrupted, 0u) << "crashes caught posted requests";
    s.path().Stop();
    EXPECT_EQ(s.path().in_flight(), 0u);
  }
  std::vector<uint32_t> taken;
  while (auto b = host->AllocBuffer()) taken.push_back(*b);
  EXPECT_EQ(taken.size(), kBuffers) << "every buffer came back";
  for (uint32_t b : taken) host->FreeBuffer(b);
}

}  // namespace
}  // namespace umbra::shadows
