// DriverHost with real driver processes: the echo driver and a faulty one.
#include "runtime/supervisor/driver_host.h"

#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "drivers/echo/echo_driver.h"
#include "base/clock.h"
#include "runtime/supervisor/supervisor.h"
#include "tests/runtime/supervisor/faulty_ops.h"

namespace umbra::runtime {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;

using enum umbra::testing::FaultOp;

DriverHostOptions Options(const char* name, const char* binary = UMBRA_FAULTY_DRIVER) {
  DriverHostOptions o;
  o.device_name = name;
  o.compatible = "umbra,echo";
  o.device_class = "test";
  o.driver_binary = binary;
  o.data = {.ring_entries = 64, .buffer_size = 256, .buffer_count = 64};
  o.restart.budget = 1000;
  o.restart.backoff_initial_ns = 0;
  return o;
}

int CountOpenFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

// What each open descriptor points at, for a failure message.
std::multiset<std::string> OpenFdTargets() {
  std::multiset<std::string> out;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[256] = {};
    const std::string link = std::string("/proc/self/fd/") + e->d_name;
    const ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
    std::string t = n > 0 ? std::string(target, static_cast<size_t>(n)) : "?";
    // Socket and pipe inode numbers differ from run to run: keep the kind.
    if (const auto colon = t.find(":["); colon != std::string::npos) t.resize(colon);
    out.insert(t);
  }
  closedir(d);
  return out;
}

// The targets in `now` beyond those in `before`.
std::string ExtraFds(const std::multiset<std::string>& before, const std::multiset<std::string>& now) {
  std::string extra;
  std::multiset<std::string> left = before;
  for (const auto& t : now) {
    if (auto it = left.find(t); it != left.end()) {
      left.erase(it);
    } else {
      extra += " " + t;
    }
  }
  return extra;
}

int CountMappings() {
  std::ifstream maps("/proc/self/maps");
  int n = 0;
  std::string line;
  while (std::getline(maps, line)) ++n;
  return n;
}

// Children of this process in `wanted` state (Z: zombie, T: stopped).
int CountChildrenIn(char wanted) {
  int zombies = 0;
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream stat(std::string("/proc/") + e->d_name + "/stat");
    std::string all((std::istreambuf_iterator<char>(stat)), {});
    size_t close = all.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (sscanf(all.c_str() + close + 2, "%c %d", &state, &ppid) == 2 && ppid == getpid() && state == wanted) {
      ++zombies;
    }
  }
  closedir(d);
  return zombies;
}
int CountZombieChildren() { return CountChildrenIn('Z'); }

// Whether `pid` is gone (killed and reaped) within 5 s.
bool GoneSoon(pid_t pid) {
  const int64_t deadline = MonotonicNanos() + 5 * kSec;
  while (kill(pid, 0) == 0 && MonotonicNanos() < deadline) usleep(1000);
  return kill(pid, 0) != 0;
}

class DriverHostTest : public ::testing::Test {
 protected:
  DriverHost& Start(DriverHostOptions o) {
    auto host = sup_.AddDevice(std::move(o));
    EXPECT_TRUE(host.has_value()) << host.error().ToString();
    (*host)->Start();
    auto r = (*host)->WaitUntilRunning(10 * kSec);
    EXPECT_TRUE(r.has_value()) << r.error().ToString();
    return **host;
  }

  // Sends one request and waits for its completion.
  Completion RoundTrip(DriverHost& h, uint16_t op, uint64_t arg = 0, int64_t timeout = 5 * kSec) {
    uint32_t buf = *h.AllocBuffer();
    std::memset(h.buffer(buf), 0x5a, 16);
    Request r{.op = op, .offset = buf, .length = 16, .capacity = 16, .arg = arg, .cookie = 77};
    auto n = h.Submit({&r, 1});
    Completion c{.cookie = 0, .status = -1};
    if (!n || *n != 1) {
      h.FreeBuffer(buf);
      c.status = n ? -2 : static_cast<int32_t>(n.error().code);
      return c;
    }
    const int64_t deadline = MonotonicNanos() + timeout;
    while (MonotonicNanos() < deadline && h.Wait({&c, 1}, deadline - MonotonicNanos()) == 0) {}
    h.FreeBuffer(buf);
    return c;
  }

  // Waits until a driver other than `old` is serving (Kill is asynchronous).
  void ExpectAnotherDriver(DriverHost& h, pid_t old) {
    const int64_t deadline = MonotonicNanos() + 10 * kSec;
    while ((h.driver_pid() == old || h.driver_pid() <= 0 || h.state() != DeviceState::kRunning) &&
           MonotonicNanos() < deadline) {
      usleep(100);
    }
    EXPECT_NE(h.driver_pid(), old);
    ExpectServingAgain(h);
  }

  // Waits until the device served a fresh echo after a fault.
  void ExpectServingAgain(DriverHost& h) {
    ASSERT_TRUE(h.WaitUntilRunning(10 * kSec).has_value());
    Completion c = RoundTrip(h, drivers::EchoDriver::kEcho);
    EXPECT_EQ(c.status, 0);
    EXPECT_EQ(c.cookie, 77u);
  }

  Supervisor sup_;
};

TEST_F(DriverHostTest, EchoServesBothChannels) {
  DriverHost& h = Start(Options("echo0", UMBRA_ECHO_DRIVER));
  uint32_t buf = *h.AllocBuffer();
  for (int i = 0; i < 100; ++i) h.buffer(buf)[i] = std::byte(i);
  Request r{.op = drivers::EchoDriver::kEcho, .offset = buf, .length = 100, .capacity = 100, .cookie = 5};
  ASSERT_EQ(*h.Submit({&r, 1}), 1u);
  Completion c;
  ASSERT_EQ(h.Wait({&c, 1}, 5 * kSec), 1u);
  EXPECT_EQ(c.cookie, 5u);
  EXPECT_EQ(c.status, 0);
  EXPECT_EQ(c.length, 100u);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(h.buffer(buf)[i], ~std::byte(i)) << i;

  ASSERT_TRUE(h.Call(drivers::EchoDriver::kSetTag, "blue", kSec).has_value());
  EXPECT_EQ(*h.Call(drivers::EchoDriver::kGetTag, "", kSec), "blue");
  EXPECT_EQ(*h.Call(drivers::EchoDriver::kGetCount, "", kSec), "1");
  auto bad = h.Call(99, "", kSec);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, Errc::kInvalidArgument);
}

// A batch runs in one message, in order: the tag set by its first call is
// what its second reads; a failing call stops the batch (the tag set after
// it is not), and the driver keeps serving.
TEST_F(DriverHostTest, CallBatchRunsInOrderAndStopsAtTheFirstFailure) {
  using drivers::EchoDriver;
  DriverHost& h = Start(Options("echo0", UMBRA_ECHO_DRIVER));
  auto replies = h.CallBatch({{EchoDriver::kSetTag, "red"},
                              {EchoDriver::kGetTag, ""},
                              {EchoDriver::kSetTag, "green"},
                              {EchoDriver::kGetTag, ""}},
                             kSec);
  ASSERT_TRUE(replies.has_value()) << replies.error().ToString();
  ASSERT_EQ(replies->size(), 4u);
  EXPECT_EQ((*replies)[1], "red");
  EXPECT_EQ((*replies)[3], "green");

  auto failed = h.CallBatch({{EchoDriver::kSetTag, "blue"}, {99, ""}, {EchoDriver::kSetTag, "never"}}, kSec);
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(*h.Call(EchoDriver::kGetTag, "", kSec), "blue") << "the call after the failed one did not run";
  EXPECT_TRUE(h.CallBatch({}, kSec)->empty());
  EXPECT_EQ(h.stats().restarts, 0u) << "no violation, no restart";
}

cpu_set_t OnlyCpu(int cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  return one;
}

// Runs the calling thread on `cpu` until destroyed.
class PinThisThread {
 public:
  explicit PinThisThread(int cpu) {
    sched_getaffinity(0, sizeof saved_, &saved_);
    const cpu_set_t one = OnlyCpu(cpu);
    sched_setaffinity(0, sizeof one, &one);
  }
  ~PinThisThread() { sched_setaffinity(0, sizeof saved_, &saved_); }

 private:
  cpu_set_t saved_;
};

// The CPUs this process may run on, in order.
std::vector<int> UsableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof set, &set);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

// Puts the driver's process on `cpu`. It says where it runs the next time it
// publishes completions.
void PinDriver(DriverHost& h, int cpu) {
  const cpu_set_t one = OnlyCpu(cpu);
  ASSERT_EQ(sched_setaffinity(h.driver_pid(), sizeof one, &one), 0) << std::strerror(errno);
}

// One request at a time: when the driver runs on the waiter's own CPU, the
// wait sleeps at once (the driver has the CPU and wakes it); on another CPU
// it spins as before.
TEST_F(DriverHostTest, AWaiterSharingItsCpuWithTheDriverSleepsInsteadOfSpinning) {
  const std::vector<int> cpus = UsableCpus();
  ASSERT_FALSE(cpus.empty());
  DriverHost& h = Start(Options("echo0", UMBRA_ECHO_DRIVER));
  // 200 round trips from cpus[0] with the driver on `driver_cpu` (after 10
  // for the driver to say where it runs): how many waits slept at once.
  auto handed_over = [&](int driver_cpu) -> uint64_t {
    PinThisThread pin(cpus[0]);
    PinDriver(h, driver_cpu);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(RoundTrip(h, drivers::EchoDriver::kEcho).status, 0);
    const uint64_t before = h.stats().waits_handed_over;
    for (int i = 0; i < 200; ++i) EXPECT_EQ(RoundTrip(h, drivers::EchoDriver::kEcho).status, 0);
    return h.stats().waits_handed_over - before;
  };
  EXPECT_GT(handed_over(cpus[0]), 100u) << "the waits on the driver's CPU slept at once";
  if (cpus.size() < 2) GTEST_SKIP() << "one CPU: the driver cannot run on another one";
  EXPECT_EQ(handed_over(cpus[1]), 0u) << "on different CPUs the wait spins";
}

TEST_F(DriverHostTest, ManyRequestsInFlightCompleteInAnyBatching) {
  DriverHost& h = Start(Options("echo0", UMBRA_ECHO_DRIVER));
  std::vector<Request> reqs;
  for (uint64_t i = 0; i < 64; ++i) {
    reqs.push_back({.op = drivers::EchoDriver::kNop, .cookie = i});
  }
  uint64_t seen = 0;
  for (int round = 0; round < 100; ++round) {
    size_t sent = 0;
    while (sent < reqs.size()) sent += *h.Submit(std::span(reqs).subspan(sent));
    size_t got = 0;
    Completion out[64];
    while (got < reqs.size()) {
      size_t n = h.Wait(out, 5 * kSec);
      ASSERT_GT(n, 0u);
      for (size_t i = 0; i < n; ++i) {
        seen += out[i].cookie;
        ASSERT_EQ(out[i].status, 0);
      }
      got += n;
    }
  }
  EXPECT_EQ(seen, 100u * (63 * 64 / 2));
}

struct CrashCase {
  const char* name;
  uint16_t op;
  uint64_t arg;
  DetectReason reason;
  int code;
};

class CrashTest : public DriverHostTest, public ::testing::WithParamInterface<CrashCase> {};

TEST_P(CrashTest, DetectedWithTheRightReasonAndServingAgainAtRandomPoints) {
  const CrashCase& cc = GetParam();
#if defined(__SANITIZE_ADDRESS__)
  if (cc.code == SIGSEGV) {
    GTEST_SKIP() << "under AddressSanitizer the driver's own ASan runtime catches the segfault "
                    "and exits with status 1";
  }
#endif
  auto o = Options("dev0");
  // The init of a PID namespace cannot kill itself (the kernel ignores a
  // SIGKILL it sends itself): a driver that does so runs without one here.
  if (cc.op == kSelfKill) o.sandbox.pid_namespace = false;
  DriverHost& h = Start(std::move(o));
  std::mt19937 rng(42);
  for (int round = 0; round < 5; ++round) {
    // A stream of requests with the fatal one somewhere in the middle.
    const int before = std::uniform_int_distribution<int>(0, 20)(rng);
    std::vector<Request> reqs;
    for (int i = 0; i < before; ++i) reqs.push_back({.op = drivers::EchoDriver::kNop, .cookie = uint64_t(i)});
    reqs.push_back({.op = cc.op, .arg = cc.arg, .cookie = 1000});
    for (int i = 0; i < 5; ++i) reqs.push_back({.op = drivers::EchoDriver::kNop, .cookie = uint64_t(2000 + i)});
    const size_t detections_before = h.detections().size();
    ASSERT_EQ(*h.Submit(reqs), reqs.size());
    size_t done = 0, interrupted = 0;
    Completion out[64];
    const int64_t deadline = MonotonicNanos() + 10 * kSec;
    while (done < reqs.size() && MonotonicNanos() < deadline) {
      size_t n = h.Wait(out, kSec);
      for (size_t i = 0; i < n; ++i) {
        if (out[i].status == static_cast<int32_t>(Errc::kInterrupted))
          ++interrupted;
        else
          EXPECT_EQ(out[i].status, 0);
      }
      done += n;
    }
    ASSERT_EQ(done, reqs.size()) << "every request completes, some as interrupted";
    EXPECT_GE(interrupted, 1u) << "the fatal request itself was in flight";
    ASSERT_TRUE(h.WaitUntilRunning(10 * kSec).has_value());
    auto d = h.detections();
    ASSERT_EQ(d.size(), detections_before + 1);
    EXPECT_EQ(d.back().reason, cc.reason) << d.back().ToString();
    EXPECT_EQ(d.back().code, cc.code) << d.back().ToString();
    ExpectServingAgain(h);
  }
  EXPECT_EQ(h.stats().restarts, 5u);
}

INSTANTIATE_TEST_SUITE_P(Faults, CrashTest,
                         ::testing::Values(CrashCase{"segfault", kSegfault, 0, DetectReason::kSignal, SIGSEGV},
                                           CrashCase{"abort", kAbort, 0, DetectReason::kSignal, SIGABRT},
                                           CrashCase{"sigkill", kSelfKill, 0, DetectReason::kSignal, SIGKILL},
                                           CrashCase{"exit0", kExit, 0, DetectReason::kExit, 0},
                                           CrashCase{"exit1", kExit, 1, DetectReason::kExit, 1}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(DriverHostTest, HangInAHandlerIsDetectedByTheHeartbeatAndKilled) {
  auto o = Options("dev0");
  o.heartbeat_period_ns = 20 * kMs;
  o.request_deadline_ns = 60 * kSec;  // only the heartbeat can see this one
  DriverHost& h = Start(std::move(o));
  const int64_t t0 = MonotonicNanos();
  Completion c = RoundTrip(h, kHang);
  EXPECT_EQ(c.status, static_cast<int32_t>(Errc::kInterrupted));
  auto d = h.detections();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].reason, DetectReason::kMissedHeartbeat) << d[0].ToString();
  // After two periods of the CPU time the spinning driver got: on a loaded
  // machine many more on the clock (bench/hang/hang_bench measures it).
  EXPECT_GT(d[0].at_ns, t0);
  ExpectServingAgain(h);
}

TEST_F(DriverHostTest, ADriverKeptBusyBackToBackStillSendsHeartbeats) {
  auto o = Options("dev0", "umbra-driver-echo");
  o.heartbeat_period_ns = 20 * kMs;
  DriverHost& h = Start(std::move(o));
  // Sixteen requests always queued: the driver never runs out of work, so it
  // never goes back to its event loop for being idle.
  std::array<Request, 16> batch;
  batch.fill(Request{.op = drivers::EchoDriver::kNop});
  std::array<Completion, 16> done;
  size_t queued = 0;
  uint64_t served = 0;
  const int64_t until = MonotonicNanos() + 300 * kMs;
  while (MonotonicNanos() < until && h.detections().empty()) {
    if (queued < batch.size()) {
      auto n = h.Submit({batch.data(), batch.size() - queued});
      if (n) queued += *n;
    }
    const size_t got = h.Wait(done, 100 * kMs);
    queued -= got;
    served += got;
  }
  EXPECT_TRUE(h.detections().empty()) << h.detections()[0].ToString() << " after " << served << " requests";
  EXPECT_GT(served, 1000u);
}

TEST_F(DriverHostTest, StoppedDriverIsDetectedAsAHang) {
  auto o = Options("dev0");
  o.heartbeat_period_ns = 5 * kMs;  // the smallest supported period
  DriverHost& h = Start(std::move(o));
  h.Kill(SIGSTOP);
  ASSERT_TRUE(h.WaitForState(DeviceState::kRecovering, 5 * kSec).has_value());
  ExpectServingAgain(h);
  EXPECT_EQ(h.detections().at(0).reason, DetectReason::kMissedHeartbeat);
}

TEST_F(DriverHostTest, RequestOlderThanItsDeadlineIsAHang) {
  auto o = Options("dev0");
  o.heartbeat_period_ns = 10 * kSec;  // only the deadline can see this one
  o.request_deadline_ns = 100 * kMs;
  DriverHost& h = Start(std::move(o));
  Completion c = RoundTrip(h, kHang);
  EXPECT_EQ(c.status, static_cast<int32_t>(Errc::kInterrupted));
  EXPECT_EQ(h.detections().at(0).reason, DetectReason::kRequestDeadline);
  ExpectServingAgain(h);
}

struct HostileCase {
  const char* name;
  uint16_t op;
};

class HostileTest : public DriverHostTest, public ::testing::WithParamInterface<HostileCase> {};

TEST_P(HostileTest, HostSurvivesAndRecoversTheDriver) {
  DriverHost& h = Start(Options("dev0"));
  uint64_t arg = 0;
  if (GetParam().op == kCorruptRing) {
    // Distance from the pool back to the completion ring header, from the
    // layout the host chose (both rings precede the pool).
    ipc::DataChannelOptions o{.ring_entries = 64, .buffer_size = 256, .buffer_count = 64};
    auto probe = ipc::DataChannel::Create("layout", o);
    arg = (*probe)->layout().pool_offset - (*probe)->layout().complete_ring_offset;
  }
  RoundTrip(h, GetParam().op, arg);
  // Some misbehaviour is only visible when the host next reads the ring or
  // the control channel: keep the device busy until it is noticed.
  const int64_t deadline = MonotonicNanos() + 10 * kSec;
  while (h.detections().empty() && MonotonicNanos() < deadline) {
    RoundTrip(h, drivers::EchoDriver::kNop);
    usleep(1000);
  }
  ASSERT_TRUE(h.WaitUntilRunning(10 * kSec).has_value());
  auto d = h.detections();
  ASSERT_GE(d.size(), 1u) << "the misbehaviour was noticed";
  // On a loaded machine a slow driver may first be caught by its heartbeat;
  // the violation must be among the detections all the same.
  EXPECT_TRUE(std::any_of(d.begin(), d.end(), [](const Detection& x) {
    return x.reason == DetectReason::kProtocolViolation;
  })) << d[0].ToString();
  EXPECT_GE(h.stats().protocol_violations, 1u);
  ExpectServingAgain(h);
}

INSTANTIATE_TEST_SUITE_P(
    Misbehaviour, HostileTest,
    ::testing::Values(HostileCase{"forged_id", kForgeId}, HostileCase{"overlong_completion", kOverlongCompletion},
                      HostileCase{"corrupt_ring", kCorruptRing}, HostileCase{"garbage_datagram", kGarbageDatagram},
                      HostileCase{"oversized_datagram", kOversizedDatagram},
                      HostileCase{"duplicate_completion", kDuplicateCompletion},
                      HostileCase{"unknown_reply", kUnknownReply}, HostileCase{"bad_status", kBadStatus}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(DriverHostTest, LogFloodIsRateLimitedAndTheDriverKeepsServing) {
  auto o = Options("dev0");
  o.log_burst = 50;
  o.log_lines_per_second = 100;
  DriverHost& h = Start(std::move(o));
  const int64_t t0 = MonotonicNanos();
  Completion c = RoundTrip(h, kLogFlood);
  EXPECT_EQ(c.status, 0);
  ExpectServingAgain(h);
  // Let the loop read what reached the socket (the driver drops what does not fit).
  for (int i = 0; i < 100 && h.stats().log_lines + h.stats().log_lines_suppressed < 100; ++i) {
    usleep(10'000);
  }
  const auto s = h.stats();
  const double elapsed_s = double(MonotonicNanos() - t0) / 1e9;
  EXPECT_GT(s.log_lines_suppressed, 0u);
  EXPECT_LE(double(s.log_lines), 50 + 100 * elapsed_s + 1) << "burst plus rate, no more";
  EXPECT_TRUE(h.detections().empty()) << "a flood is not a fault";
}

TEST_F(DriverHostTest, RestartBudgetSpentMarksTheDeviceFailedUntilResetFailed) {
  auto o = Options("dev0");
  o.restart.budget = 3;
  o.restart.window_ns = 60 * kSec;
  DriverHost& h = Start(std::move(o));
  for (int i = 0; i < 3; ++i) {
    RoundTrip(h, kAbort);
    ASSERT_TRUE(h.WaitUntilRunning(10 * kSec).has_value());
  }
  RoundTrip(h, kAbort);
  ASSERT_TRUE(h.WaitForState(DeviceState::kFailed, 10 * kSec).has_value());
  Request r{.op = drivers::EchoDriver::kNop};
  auto refused = h.Submit({&r, 1});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, Errc::kDeviceFailed);
  EXPECT_NE(refused.error().message.find("failed"), std::string::npos);
  auto call = h.Call(drivers::EchoDriver::kGetTag, "", kSec);
  ASSERT_FALSE(call.has_value());
  EXPECT_EQ(call.error().code, Errc::kDeviceFailed);
  EXPECT_EQ(h.detections().back().reason, DetectReason::kSignal);

  h.ResetFailed();
  ExpectServingAgain(h);
}

TEST_F(DriverHostTest, ProbeFailureCountsAgainstTheBudget) {
  auto o = Options("dev0");
  o.settings["probe"] = "fail";
  o.restart.budget = 2;
  auto host = sup_.AddDevice(std::move(o));
  (*host)->Start();
  ASSERT_TRUE((*host)->WaitForState(DeviceState::kFailed, 10 * kSec).has_value());
  EXPECT_EQ((*host)->detections().back().reason, DetectReason::kProbeFailed);
}

TEST_F(DriverHostTest, WarmStandbyTakesOverAfterACrash) {
  auto o = Options("dev0");
  o.warm_standby = true;
  DriverHost& h = Start(std::move(o));
  for (int i = 0; i < 5; ++i) {
    usleep(50'000);  // let the standby finish its handshake
    RoundTrip(h, kSegfault);
    ExpectServingAgain(h);
  }
  EXPECT_EQ(h.stats().restarts, 5u);
}

// The next standby is spawned 50 ms after a recovery; a crash while it is
// still starting up promotes it (it is further along than a fresh spawn).
TEST_F(DriverHostTest, CrashesWhileTheNextStandbyIsStillStartingAreServedAgain) {
  auto o = Options("dev0");
  o.warm_standby = true;
  DriverHost& h = Start(std::move(o));
  for (int i = 0; i < 12; ++i) {
    usleep(50'000 + 300 * i);  // around the moment the standby is spawned
    RoundTrip(h, kSegfault);
    ExpectServingAgain(h);
  }
  EXPECT_EQ(h.stats().restarts, 12u);
}

// A driver the host kills is only stopped while the recovery runs (its
// teardown would compete with it) and killed once the successor is ready.
TEST_F(DriverHostTest, ADriverTheHostKillsIsStoppedThenKilledOnceItsSuccessorIsReady) {
  auto o = Options("dev0");
  o.warm_standby = true;
  DriverHost& h = Start(std::move(o));
  for (int i = 0; i < 5; ++i) {
    usleep(50'000);  // let the standby finish its handshake
    const pid_t old = h.driver_pid();
    ASSERT_GT(old, 0);
    h.Kill(SIGKILL);
    ExpectAnotherDriver(h, old);
    EXPECT_TRUE(GoneSoon(old)) << "the stopped driver " << old << " was killed and reaped";
  }
  EXPECT_EQ(CountChildrenIn('T'), 0);
  EXPECT_EQ(h.detections().back().code, SIGKILL);
}

// Stopped drivers do not outlive a recovery that gives up.
TEST_F(DriverHostTest, DriversStoppedByARecoveryThatGivesUpAreKilled) {
  auto o = Options("dev0");
  o.restart.budget = 1;
  o.restart.window_ns = 60 * kSec;
  DriverHost& h = Start(std::move(o));
  const pid_t first = h.driver_pid();
  h.Kill(SIGKILL);
  ExpectAnotherDriver(h, first);
  const pid_t second = h.driver_pid();
  h.Kill(SIGKILL);
  ASSERT_TRUE(h.WaitForState(DeviceState::kFailed, 10 * kSec).has_value());
  EXPECT_TRUE(GoneSoon(first));
  EXPECT_TRUE(GoneSoon(second));
  EXPECT_EQ(CountChildrenIn('T'), 0);
}

TEST_F(DriverHostTest, ThousandCrashCyclesLeakNoFdsMappingsOrZombies) {
  auto o = Options("dev0");
  // This test is about leaks: a slow (sanitized) build must not add hang
  // detections of its own.
  o.heartbeat_period_ns = kSec;
  DriverHost& h = Start(std::move(o));
  ExpectServingAgain(h);
  const int fds = CountOpenFds();
  const auto fd_targets = OpenFdTargets();
  const int maps = CountMappings();
  for (int i = 0; i < 1000; ++i) {
    // A sandboxed driver cannot SIGKILL itself (it is the init of its PID
    // namespace): the host's SIGKILL stands for every other sender.
    if (i % 2) {
      RoundTrip(h, kSegfault);
    } else {
      const uint64_t restarts = h.stats().restarts;
      h.Kill(SIGKILL);  // done on the loop: wait until it was
      for (int wait = 0; wait < 10'000 && h.stats().restarts == restarts; ++wait) usleep(100);
    }
    ASSERT_TRUE(h.WaitUntilRunning(10 * kSec).has_value()) << "cycle " << i;
  }
  ExpectServingAgain(h);
  // Reaping is asynchronous, and stopped drivers are killed 20 ms after a
  // recovery: give the last ones a moment.
  for (int i = 0; i < 300 && (CountOpenFds() != fds || CountZombieChildren() != 0); ++i) usleep(10'000);
  EXPECT_EQ(CountOpenFds(), fds) << "more open:" << ExtraFds(fd_targets, OpenFdTargets())
                                 << "; fewer:" << ExtraFds(OpenFdTargets(), fd_targets);
#if !defined(UMBRA_TSAN) && !defined(__SANITIZE_ADDRESS__)
  EXPECT_EQ(CountMappings(), maps);  // sanitizer runtimes map memory of their own
#else
  (void)maps;
#endif
  EXPECT_EQ(CountZombieChildren(), 0);
  EXPECT_EQ(h.stats().restarts, 1000u);
}

TEST_F(DriverHostTest, ShutdownStopsTheDriverAndFailsNewRequests) {
  DriverHost& h = Start(Options("dev0", UMBRA_ECHO_DRIVER));
  pid_t pid = h.driver_pid();
  ASSERT_GT(pid, 0);
  h.Shutdown();
  EXPECT_EQ(h.state(), DeviceState::kStopped);
  EXPECT_NE(kill(pid, 0), 0) << "the driver process is gone and reaped";
  Request r{.op = drivers::EchoDriver::kNop};
  EXPECT_EQ(h.Submit({&r, 1}).error().code, Errc::kNoDevice);
}

}  // namespace
}  // namespace umbra::runtime
