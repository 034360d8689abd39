// Each process-killing action, carried out in a forked child: the child must
// die the way the real bug would make it die.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <string>

#include "faultinject/bugs.h"
#include "faultinject/failpoint.h"
#include "base/clock.h"

namespace umbra::faultinject {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(UMBRA_TSAN)
// The sanitizers catch SIGSEGV and heap corruption themselves, report them and
// exit(1): the child would not die by the signal these tests check.
constexpr bool kSanitizerInterceptsCrashes = true;
#else
constexpr bool kSanitizerInterceptsCrashes = false;
#endif

#define SKIP_IF_SANITIZER_INTERCEPTS()                                           \
  if (kSanitizerInterceptsCrashes)                                               \
  GTEST_SKIP() << "the sanitizer intercepts this crash and exits(1) instead of " \
                  "letting the signal kill the process; checked in the plain build"

struct ChildOutcome {
  bool exited = false;
  int code = 0;
  bool signaled = false;
  int signal = 0;
  bool timed_out = false;  // still alive at the deadline: killed with SIGKILL
  char state = '?';        // /proc/<pid>/stat state at the deadline (R, S, D …)
};

char ProcessState(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() ? line[paren + 2] : '?';
}

// Runs `body` in a forked child (no core dumps) and waits up to `timeout_ms`.
ChildOutcome RunInChild(const std::function<void()>& body, int timeout_ms = 5000) {
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    body();
    _exit(0);
  }
  ChildOutcome outcome;
  int status = 0;
  int64_t deadline = MonotonicNanos() + int64_t{timeout_ms} * 1'000'000;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (MonotonicNanos() > deadline) {
      outcome.timed_out = true;
      outcome.state = ProcessState(pid);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return outcome;
    }
    usleep(2000);
  }
  outcome.exited = WIFEXITED(status);
  outcome.code = outcome.exited ? WEXITSTATUS(status) : 0;
  outcome.signaled = WIFSIGNALED(status);
  outcome.signal = outcome.signaled ? WTERMSIG(status) : 0;
  return outcome;
}

// A child that arms a private registry with `spec` and hits `site` once.
ChildOutcome HitInChild(std::string spec, int timeout_ms = 5000) {
  return RunInChild(
      [&] {
        FailpointRegistry registry;
        Result<Spec> parsed = ParseSpec(spec);
        if (!parsed || !registry.Arm(*parsed, "dev0", "drv")) _exit(100);
        registry.Hit("site");
        _exit(101);  // the action returned: it did not do what it says
      },
      timeout_ms);
}

void ExpectKilledBy(const ChildOutcome& outcome, int signal) {
  EXPECT_FALSE(outcome.timed_out);
  EXPECT_TRUE(outcome.signaled) << "exited with code " << outcome.code;
  EXPECT_EQ(outcome.signal, signal) << strsignal(outcome.signal);
}

TEST(FailpointActions, SegfaultNullDiesBySigsegv) {
  SKIP_IF_SANITIZER_INTERCEPTS();
  ExpectKilledBy(HitInChild("site=segfault"), SIGSEGV);
}

TEST(FailpointActions, SegfaultWildDiesBySigsegv) {
  SKIP_IF_SANITIZER_INTERCEPTS();
  ExpectKilledBy(HitInChild("site=segfault(wild)"), SIGSEGV);
}

TEST(FailpointActions, SegfaultThroughTheMacroDiesBySigsegv) {
  SKIP_IF_SANITIZER_INTERCEPTS();
  ChildOutcome outcome = RunInChild([] {
    FailpointRegistry::Global().Arm(*ParseSpec("drv.handler=2+segfault"), "dev0", "drv");
    for (int i = 0; i < 2; ++i) {
      if (UMBRA_FAILPOINT("drv.handler")) _exit(102);
    }
    UMBRA_FAILPOINT("drv.handler");
    _exit(101);
  });
  ExpectKilledBy(outcome, SIGSEGV);
}

TEST(FailpointActions, AbortDiesBySigabrt) { ExpectKilledBy(HitInChild("site=abort"), SIGABRT); }

TEST(FailpointActions, PanicAliasDiesBySigabrt) { ExpectKilledBy(HitInChild("site=panic"), SIGABRT); }

TEST(FailpointActions, DoubleFreeIsCaughtByGlibcAndAborts) {
  SKIP_IF_SANITIZER_INTERCEPTS();
  ExpectKilledBy(HitInChild("site=corrupt_heap(double_free)"), SIGABRT);
}

TEST(FailpointActions, ClobberedChunkHeaderIsCaughtByGlibcAndAborts) {
  SKIP_IF_SANITIZER_INTERCEPTS();
  ExpectKilledBy(HitInChild("site=corrupt_heap(header)"), SIGABRT);
}

TEST(FailpointActions, HangSpinsUntilKilled) {
  ChildOutcome outcome = HitInChild("site=hang", 500);
  EXPECT_TRUE(outcome.timed_out) << "the child ended on its own";
  EXPECT_EQ(outcome.state, 'R') << "a hang spins on the CPU";
}

TEST(FailpointActions, DeadlockBlocksUntilKilled) {
  ChildOutcome outcome = HitInChild("site=deadlock", 500);
  EXPECT_TRUE(outcome.timed_out) << "the child ended on its own";
  EXPECT_EQ(outcome.state, 'S') << "a deadlock sleeps in the kernel on the lock";
}

TEST(FailpointActions, ExitUsesItsCode) {
  ChildOutcome outcome = HitInChild("site=exit(7)");
  EXPECT_TRUE(outcome.exited);
  EXPECT_EQ(outcome.code, 7);
  outcome = HitInChild("site=exit");
  EXPECT_TRUE(outcome.exited);
  EXPECT_EQ(outcome.code, 1);
}

int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

TEST(FailpointActions, LeakGrowsTheResidentSetUpToTheLimitThenStops) {
  // Exit codes: 0 fine, 1 wrong leaked total, 2 RSS grew too little, 3 too
  // much, 4 RSS still grew after the limit.
  ChildOutcome outcome = RunInChild([] {
    FailpointRegistry registry;
    if (!registry.Arm(*ParseSpec("site=leak(1048576,16)"), "dev0", "drv")) _exit(100);
    int64_t before = ResidentBytes();
    for (int i = 0; i < 16; ++i) registry.Hit("site");
    int64_t at_limit = ResidentBytes();
    for (int i = 0; i < 24; ++i) registry.Hit("site");
    int64_t after = ResidentBytes();
    if (bugs::LeakedBytes() != (16u << 20)) _exit(1);
    if (at_limit - before < (15 << 20)) _exit(2);
    // Sanitizers shadow the leaked pages too: only the plain build bounds it.
    if (!kSanitizerInterceptsCrashes && at_limit - before > (24 << 20)) _exit(3);
    if (after - at_limit > (1 << 20)) _exit(4);
    _exit(0);
  });
  EXPECT_TRUE(outcome.exited);
  EXPECT_EQ(outcome.code, 0);
}

TEST(FailpointActions, LeakWithAbortAbortsAtTheLimit) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ChildOutcome outcome = RunInChild([&] {
    close(fds[0]);
    FailpointRegistry registry;
    if (!registry.Arm(*ParseSpec("site=leak(1048576,8,abort)"), "dev0", "drv")) _exit(100);
    for (int i = 0; i < 100; ++i) {
      registry.Hit("site");
      if (write(fds[1], "x", 1) != 1) _exit(103);
    }
    _exit(101);
  });
  close(fds[1]);
  char buffer[128];
  ssize_t survived = read(fds[0], buffer, sizeof buffer);
  close(fds[0]);
  ExpectKilledBy(outcome, SIGABRT);
  EXPECT_EQ(survived, 8) << "8 hits of 1 MiB fit in the 8 MiB limit; the ninth aborts";
}

TEST(FailpointActions, SiteInterpretedActionsComeBackToTheCaller) {
  ChildOutcome outcome = RunInChild([] {
    FailpointRegistry registry;
    if (!registry.Arm(*ParseSpec("site=drop_completion"), "dev0", "drv")) _exit(100);
    _exit(registry.Hit("site").fault == SiteFault::kDropCompletion ? 0 : 1);
  });
  EXPECT_TRUE(outcome.exited);
  EXPECT_EQ(outcome.code, 0);
}

}  // namespace
}  // namespace umbra::faultinject
