// The hostile driver against a sandboxed host: each attack fails or is
// invisible, the host survives, the attacker (never its victim) is charged,
// and a neighbour device's acknowledged data stays right.
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "drivers/echo/echo_driver.h"
#include "base/clock.h"
#include "runtime/supervisor/supervisor.h"

namespace umbra::runtime {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;
constexpr uint32_t kAttack = 100;  // tests/drivers/hostile/hostile_driver.cc

DriverHostOptions Options(const char* name, const char* binary) {
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

class HostileDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the sandbox's uid, cgroups and limits are checked as root";
    Start(Options("hostile0", UMBRA_HOSTILE_DRIVER));
  }

  // The victim's heartbeats are far apart: an attacker that spins or forks
  // takes CPU from it, and until the heartbeat counts only the CPU time a
  // driver had, a starved victim would look hung on a loaded machine (or in a
  // sanitized build). What is asserted is that the attack does not reach it.
  void Start(DriverHostOptions hostile_options) {
    auto victim_options = Options("victim0", UMBRA_ECHO_DRIVER);
    victim_options.heartbeat_period_ns = kSec;
    victim_ = *sup_.AddDevice(std::move(victim_options));
    hostile_ = *sup_.AddDevice(std::move(hostile_options));
    victim_->Start();
    hostile_->Start();
    ASSERT_TRUE(victim_->WaitUntilRunning(10 * kSec));
    ASSERT_TRUE(hostile_->WaitUntilRunning(10 * kSec));
  }

  Result<std::string> Attack(const std::string& what, long number = 0) {
    return hostile_->Call(kAttack, what + " " + std::to_string(number), 5 * kSec);
  }

  // Waits for the attacker's first detection and returns it.
  Detection Charged() {
    const int64_t until = MonotonicNanos() + 10 * kSec;
    while (hostile_->detections().empty() && MonotonicNanos() < until) usleep(1000);
    auto d = hostile_->detections();
    return d.empty() ? Detection{.detail = "no detection"} : d.front();
  }

  // The attack was a system call the sandbox refuses: the attacker died of
  // it, charged with a violation naming the call.
  void ExpectDeniedCall(const std::string& attack, long number, const std::string& syscall) {
    auto r = Attack(attack, number);
    EXPECT_FALSE(r) << "the attack answered: " << *r;
    const Detection d = Charged();
    EXPECT_EQ(d.reason, DetectReason::kProtocolViolation) << d.ToString();
    EXPECT_NE(d.detail.find("system call " + syscall + " "), std::string::npos) << d.ToString();
    EXPECT_TRUE(hostile_->WaitUntilRunning(10 * kSec));  // recovered like any crash
  }

  void ExpectBlocked(const std::string& attack, long number = 0) {
    auto r = Attack(attack, number);
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_EQ(r->rfind("blocked: ", 0), 0u) << *r;
  }

  // The victim's requests come back right, and it was never restarted.
  void ExpectVictimUntouched() {
    for (int round = 0; round < 20; ++round) {
      auto off = victim_->AllocBuffer();
      ASSERT_TRUE(off);
      std::byte* p = victim_->buffer(*off);
      for (uint32_t i = 0; i < 64; ++i) p[i] = std::byte(i + round);
      Request r{.op = drivers::EchoDriver::kEcho, .offset = *off, .length = 64, .capacity = 64};
      ASSERT_TRUE(victim_->Submit({&r, 1}));
      Completion c;
      ASSERT_EQ(victim_->Wait({&c, 1}, 5 * kSec), 1u);
      ASSERT_EQ(c.status, 0);
      for (uint32_t i = 0; i < 64; ++i) ASSERT_EQ(p[i], ~std::byte(i + round)) << "byte " << i;
      victim_->FreeBuffer(*off);
    }
    EXPECT_EQ(victim_->stats().restarts, 0u);
    EXPECT_TRUE(victim_->detections().empty());
    EXPECT_EQ(victim_->state(), DeviceState::kRunning);
  }

  Supervisor sup_;
  DriverHost* victim_ = nullptr;
  DriverHost* hostile_ = nullptr;
};

TEST_F(HostileDriverTest, KillingTheHostIsRefusedAndChargedToTheAttacker) {
  ExpectDeniedCall("kill", getpid(), "kill");
  ExpectVictimUntouched();
}

TEST_F(HostileDriverTest, StoppingTheHostIsRefused) {
  ExpectDeniedCall("stop", getpid(), "kill");
  ExpectVictimUntouched();
}

TEST_F(HostileDriverTest, KillingANeighbourIsChargedToTheAttackerNotTheVictim) {
  ExpectDeniedCall("kill", victim_->driver_pid(), "kill");
  ExpectVictimUntouched();
}

TEST_F(HostileDriverTest, PidfdSignalsAreRefused) {
  ExpectDeniedCall("pidfd-signal", victim_->driver_pid(), "pidfd_open");
  ExpectVictimUntouched();
}

TEST_F(HostileDriverTest, ReadingHostMemoryThroughProcessVmReadvIsRefused) {
  ExpectDeniedCall("process-vm-readv", getpid(), "process_vm_readv");
}

TEST_F(HostileDriverTest, PtraceIsRefused) { ExpectDeniedCall("ptrace", getpid(), "ptrace"); }

TEST_F(HostileDriverTest, TheLoggingModeLetsARefusedCallThrough) {
  auto o = Options("logged0", UMBRA_HOSTILE_DRIVER);
  o.sandbox.seccomp = sandbox::SeccompMode::kLog;
  DriverHost* logged = *sup_.AddDevice(std::move(o));
  logged->Start();
  ASSERT_TRUE(logged->WaitUntilRunning(10 * kSec));
  auto r = logged->Call(kAttack, "setpgid 0", 5 * kSec);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->rfind("succeeded", 0), 0u) << *r;
  EXPECT_TRUE(logged->detections().empty());
}

TEST_F(HostileDriverTest, EveryCgroupIsRemovedWhenTheDevicesStop) {
  (void)Attack("fork-bomb", 10);  // children in the group when it ends
  hostile_->Shutdown();
  victim_->Shutdown();
  const std::string prefix = "umbra-" + std::to_string(getpid()) + "-";
  for (const char* root : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    DIR* d = opendir(root);
    if (d == nullptr) continue;
    while (dirent* e = readdir(d)) EXPECT_NE(std::string(e->d_name).rfind(prefix, 0), 0u) << root << "/" << e->d_name;
    closedir(d);
  }
}

TEST_F(HostileDriverTest, LeavingTheProcessGroupIsRefused) { ExpectDeniedCall("setsid", 0, "setsid"); }

TEST_F(HostileDriverTest, SetpgidIsRefused) { ExpectDeniedCall("setpgid", 0, "setpgid"); }

TEST_F(HostileDriverTest, MountIsRefused) { ExpectDeniedCall("mount", 0, "mount"); }

TEST_F(HostileDriverTest, NetworkSocketsAreRefused) { ExpectDeniedCall("socket", 0, "socket"); }

TEST_F(HostileDriverTest, TheHostsProcFilesAreNotVisible) {
  ExpectBlocked("proc-mem", getpid());
  ExpectBlocked("proc-environ", getpid());
  ExpectBlocked("proc-fd", getpid());
  ExpectBlocked("proc-mem", victim_->driver_pid());
  EXPECT_TRUE(hostile_->detections().empty());
  ExpectVictimUntouched();
}

TEST_F(HostileDriverTest, TheHostsFilesAreNotVisibleNorWritable) {
  ExpectBlocked("read-shadow");
  ExpectBlocked("create-file");
  // Its own /tmp is a private tmpfs: writable, and gone with the instance.
  auto r = Attack("create-tmp-file");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->rfind("succeeded", 0), 0u) << *r;
  EXPECT_NE(access("/umbra-hostile-was-here", F_OK), 0);
}

TEST_F(HostileDriverTest, AForkBombStopsAtTheProcessLimit) {
  auto r = Attack("fork-bomb", 10'000);
  if (!r) {
    // Forking a big (sanitized) process is slow: its loop may miss its
    // heartbeats first. The attacker is charged, nobody else.
    EXPECT_EQ(Charged().reason, DetectReason::kMissedHeartbeat) << r.error().ToString();
    ExpectVictimUntouched();
    return;
  }
  EXPECT_EQ(r->rfind("blocked: fork failed after ", 0), 0u) << *r;
  EXPECT_LT(std::atol(r->c_str() + std::strlen("blocked: fork failed after ")),
            static_cast<long>(sandbox::SandboxLimits{}.processes));
  ExpectVictimUntouched();
}

TEST_F(HostileDriverTest, AnFdBombStopsAtTheOpenFileLimit) {
  auto r = Attack("fd-bomb", 1'000'000);
  if (!r) {
    // A sanitizer's runtime may die of the bomb itself (AddressSanitizer
    // exits with status 1): the attacker is charged, nobody else.
    EXPECT_EQ(Charged().reason, DetectReason::kExit) << r.error().ToString();
    ExpectVictimUntouched();
    return;
  }
  EXPECT_EQ(r->rfind("blocked: open failed after ", 0), 0u) << *r;
  EXPECT_LE(std::atol(r->c_str() + std::strlen("blocked: open failed after ")),
            static_cast<long>(sandbox::SandboxLimits{}.open_files));
}

TEST_F(HostileDriverTest, AChildLeftBehindByACrashDiesWithItsInstance) {
  // The child scribbles over the pool; the driver aborts. The successor's
  // requests must come back right: the scribbler is gone.
  (void)Attack("leftover-scribbler");
  ASSERT_TRUE(hostile_->WaitUntilRunning(10 * kSec));
  usleep(50'000);
  for (int round = 0; round < 50; ++round) {
    auto off = hostile_->AllocBuffer();
    ASSERT_TRUE(off);
    std::byte* p = hostile_->buffer(*off);
    for (uint32_t i = 0; i < 64; ++i) p[i] = std::byte(i);
    Request r{.op = drivers::EchoDriver::kEcho, .offset = *off, .length = 64, .capacity = 64};
    ASSERT_TRUE(hostile_->Submit({&r, 1}));
    Completion c;
    ASSERT_EQ(hostile_->Wait({&c, 1}, 5 * kSec), 1u);
    ASSERT_EQ(c.status, 0);
    usleep(1000);
    for (uint32_t i = 0; i < 64; ++i) ASSERT_EQ(p[i], ~std::byte(i)) << "round " << round << " byte " << i;
    hostile_->FreeBuffer(*off);
  }
  ExpectVictimUntouched();
}

TEST_F(HostileDriverTest, GroupsLeftByAHostThatDiedAreRemoved) {
  // A host killed outright cannot remove its instances' groups; the next
  // host to make one sweeps them. pid 2^22 + 1 is above pid_max: never alive.
  const std::string stale = "/sys/fs/cgroup/unified/umbra-4194305-dev0.1";
  if (mkdir(stale.c_str(), 0755) != 0) GTEST_SKIP() << "no writable cgroup v2 at /sys/fs/cgroup/unified";
  hostile_->Kill(SIGKILL);  // its successor's group is made: the sweep runs
  ASSERT_TRUE(hostile_->WaitUntilRunning(10 * kSec));
  const int64_t until = MonotonicNanos() + 5 * kSec;
  while (access(stale.c_str(), F_OK) == 0 && MonotonicNanos() < until) usleep(1000);
  EXPECT_NE(access(stale.c_str(), F_OK), 0) << stale << " is still there";
  rmdir(stale.c_str());
}

class HostileMisbehaviourTest : public HostileDriverTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "CPU time is read from the instance's cgroup (root)";
    auto o = Options("hostile0", UMBRA_HOSTILE_DRIVER);
    // On a loaded machine a spinning thread gets a small share of a CPU; an
    // idle driver uses none. Heartbeats far apart, so that a driver busy
    // flooding is not first caught by a missed one.
    o.misbehaviour.idle_cpu_window_ns = 300 * kMs;
    o.misbehaviour.idle_cpu_share = 0.05;
    o.misbehaviour.messages_per_second = 2000;
    o.heartbeat_period_ns = kSec;
    Start(std::move(o));
  }
};

TEST_F(HostileMisbehaviourTest, SpinningWhileAHelperHeartbeatsIsAHang) {
  auto r = Attack("spin");
  ASSERT_TRUE(r) << r.error().ToString();
  const Detection d = Charged();
  EXPECT_EQ(d.reason, DetectReason::kMissedHeartbeat) << d.ToString();
  EXPECT_NE(d.detail.find("held a CPU with nothing outstanding"), std::string::npos) << d.ToString();
  EXPECT_TRUE(hostile_->WaitUntilRunning(10 * kSec));
  ExpectVictimUntouched();
}

TEST_F(HostileMisbehaviourTest, AFloodOfControlMessagesIsAViolation) {
  (void)Attack("log-flood", 200'000);
  const Detection d = Charged();
  EXPECT_EQ(d.reason, DetectReason::kProtocolViolation) << d.ToString();
  EXPECT_NE(d.detail.find("control-message flood"), std::string::npos) << d.ToString();
  EXPECT_TRUE(hostile_->WaitUntilRunning(10 * kSec));
  ExpectVictimUntouched();
}

class HostileMemoryTest : public HostileDriverTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the memory limit needs a writable memory cgroup (root)";
    auto o = Options("hostile0", UMBRA_HOSTILE_DRIVER);
    o.sandbox.limits.memory_bytes = 64ull << 20;
    o.sandbox.limits.memory_limit = sandbox::MemoryLimit::kAlways;
    Start(std::move(o));
  }
};

TEST_F(HostileMemoryTest, AMemoryBombIsKilledAtItsLimitAndChargedToIt) {
  auto r = Attack("memory-bomb", 1l << 30);
  EXPECT_FALSE(r) << *r;
  const Detection d = Charged();
  // Killed by the kernel at its limit — or, reclaiming at the limit on a busy
  // machine, too slow to heartbeat first: either way the attacker is charged.
  EXPECT_TRUE(d.reason == DetectReason::kSignal || d.reason == DetectReason::kChannelEof ||
              d.reason == DetectReason::kMissedHeartbeat)
      << d.ToString();
  EXPECT_TRUE(hostile_->WaitUntilRunning(10 * kSec));
  ExpectVictimUntouched();
}

}  // namespace
}  // namespace umbra::runtime
