// The own-time clock against real processes: one that sleeps, one stopped,
// one that spins on a CPU it must share, and one starved of it.
#include "runtime/supervisor/cpu_time.h"

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "base/clock.h"

namespace umbra::runtime {
namespace {

constexpr int64_t kMs = 1'000'000;

// A child process doing `what` until killed; on `cpu` if it is >= 0.
class Child {
 public:
  enum class What { kSleep, kSpin };
  Child(What what, int cpu) {
    pid_ = fork();
    if (pid_ != 0) return;
    if (cpu >= 0) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      sched_setaffinity(0, sizeof one, &one);
    }
    for (;;) {
      if (what == What::kSleep) pause();
    }
  }
  ~Child() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
};

// Own time and wall time of `pid` over `ns`.
std::pair<int64_t, int64_t> Measure(pid_t pid, int64_t ns) {
  const int64_t start = MonotonicNanos();
  OwnTime clock(pid, start);
  usleep(static_cast<useconds_t>(ns / 1000));
  const int64_t now = MonotonicNanos();
  return {clock.Advance(now, Heard::kNotLately), now - start};
}

int SomeCpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof set, &set);
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) return c;
  }
  return 0;
}

TEST(OwnTime, ASleepingProcessAccruesWallTime) {
  Child sleeper(Child::What::kSleep, -1);
  usleep(20'000);
  auto [own, wall] = Measure(sleeper.pid(), 200 * kMs);
  EXPECT_GT(own, wall * 9 / 10) << "asleep, it waits for no CPU";
}

TEST(OwnTime, AStoppedProcessAccruesWallTime) {
  Child spinner(Child::What::kSpin, -1);
  kill(spinner.pid(), SIGSTOP);
  usleep(20'000);
  auto [own, wall] = Measure(spinner.pid(), 200 * kMs);
  EXPECT_GT(own, wall * 9 / 10);
}

// Two spinners on one CPU: each is runnable all the time and gets about half
// of it; its own time is the CPU it got, well below the wall clock, and more
// than nothing.
TEST(OwnTime, ASpinnerSharingItsCpuAccruesTheCpuItGets) {
  const int cpu = SomeCpu();
  Child a(Child::What::kSpin, cpu);
  Child b(Child::What::kSpin, cpu);
  usleep(20'000);
  auto [own, wall] = Measure(a.pid(), 300 * kMs);
  EXPECT_LT(own, wall * 8 / 10) << "it waited for its CPU about half of the time";
  EXPECT_GT(own, 0);
}

// A SCHED_IDLE spinner on a CPU with a normal one runs almost never. (The
// kernel adds a run-queue wait to schedstat only when the wait ends, so that a
// process starved *now* shows no wait at all: saturation_test.cc is what
// catches a clock that forgets it, 147 false hangs in 30 s.)
TEST(OwnTime, AProcessStarvedOfItsCpuAccruesAlmostNothing) {
  const int cpu = SomeCpu();
  Child starved(Child::What::kSpin, cpu);
  sched_param none{};
  ASSERT_EQ(sched_setscheduler(starved.pid(), SCHED_IDLE, &none), 0);
  Child hog(Child::What::kSpin, cpu);
  usleep(50'000);
  auto [own, wall] = Measure(starved.pid(), 300 * kMs);
  EXPECT_LT(own, wall / 2) << "runnable all along, it hardly ran";
}

}  // namespace
}  // namespace umbra::runtime
