// Spin: bounded by its budget; giving way when more threads are runnable
// than there are CPUs (kGiveWay), or taking turns with them (kTakeTurns).
#include "base/spin.h"

#include <sched.h>
#include <time.h>

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/clock.h"

namespace umbra {
namespace {

constexpr int64_t kSec = 1'000'000'000;

int UsableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
}

// Keeps `count` threads runnable until destroyed.
class Hogs {
 public:
  explicit Hogs(int count) {
    for (int i = 0; i < count; ++i) {
      threads_.emplace_back([this] {
        while (!stop_.load(std::memory_order_relaxed)) CpuRelax();
      });
    }
  }
  ~Hogs() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

TEST(SpinTest, AZeroBudgetNeverSpins) {
  Spin spin(0);
  EXPECT_FALSE(spin.Again());
}

TEST(SpinTest, StopsAtItsBudgetAndResetStartsAFreshOne) {
  Spin spin(200'000);
  while (spin.Again()) {}
  // A loaded machine may cut the spin short; nothing makes it run on.
  EXPECT_FALSE(spin.Again());
  EXPECT_FALSE(spin.Again());
  spin.Reset();
  EXPECT_TRUE(spin.Again()) << "a fresh budget allows at least one more look";
}

TEST(SpinTest, SpinsForItsWholeBudgetOnAnIdleMachine) {
  if (CpusContended()) GTEST_SKIP() << "other threads want the CPUs right now";
  Spin spin(200'000);
  const int64_t start = MonotonicNanos();
  while (spin.Again()) {}
  const int64_t spun = MonotonicNanos() - start;
  if (spun < 200'000 && CpusContended()) GTEST_SKIP() << "the machine became busy while spinning";
  EXPECT_GE(spun, 200'000);
}

TEST(SpinTest, SeesMoreRunnableThreadsThanCpus) {
  Hogs hogs(UsableCpus() + 2);
  const int64_t deadline = MonotonicNanos() + 5 * kSec;
  bool seen = false;
  while (!seen && MonotonicNanos() < deadline) seen = CpusContended();
  EXPECT_TRUE(seen) << "never saw more than " << UsableCpus() << " runnable threads in /proc/loadavg";
}

TEST(SpinTest, GivesWayLongBeforeItsBudgetWhenCpusAreOversubscribed) {
  Hogs hogs(UsableCpus() + 2);
  // A budget of a minute: only the contention check can end this spin early.
  Spin spin(60 * kSec);
  const int64_t start = MonotonicNanos();
  while (spin.Again() && MonotonicNanos() - start < 10 * kSec) {}
  EXPECT_LT(MonotonicNanos() - start, 10 * kSec) << "kept spinning while every CPU was wanted";
}

// Runs `fn` on a thread confined to CPU `cpu`.
template <class F>
std::thread OnCpu(int cpu, F fn) {
  return std::thread([cpu, fn] {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) return;
    fn();
  });
}

int SomeUsableCpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) return cpu;
  }
  return 0;
}

int64_t ThreadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * kSec + ts.tv_nsec;
}

TEST(SpinTest, TakingTurnsSpinsItsWholeBudgetButLeavesItsCpuToAThreadThatWantsIt) {
  // Both threads on one CPU, the other one always runnable: a giving-way
  // spin would stop at once; a turn-taking one polls for its whole budget
  // while running only a sliver of the time (a plain busy loop would get
  // about half the CPU).
  const int cpu = SomeUsableCpu();
  constexpr int64_t kBudget = 300'000'000;
  std::atomic<bool> busy_running{false};
  std::atomic<bool> done{false};
  int64_t spun = 0, spinner_cpu = 0;
  std::thread busy = OnCpu(cpu, [&] {
    busy_running = true;
    while (!done.load(std::memory_order_relaxed)) CpuRelax();
  });
  std::thread spinner = OnCpu(cpu, [&] {
    while (!busy_running.load()) std::this_thread::yield();
    Spin spin(kBudget, Spin::kTakeTurns);
    const int64_t start = MonotonicNanos(), cpu0 = ThreadCpuNs();
    while (spin.Again()) {}
    spun = MonotonicNanos() - start;
    spinner_cpu = ThreadCpuNs() - cpu0;
    done = true;
  });
  spinner.join();
  busy.join();
  EXPECT_GE(spun, kBudget) << "a turn-taking spin stopped before its budget";
  EXPECT_LT(spinner_cpu, spun * 3 / 10) << "the spinner kept the CPU " << spinner_cpu * 100 / spun
                                        << "% of its spin instead of leaving it to the busy thread";
}

}  // namespace
}  // namespace umbra
