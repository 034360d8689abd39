#include "runtime/supervisor/restart_policy.h"

#include <gtest/gtest.h>

namespace umbra::runtime {
namespace {

constexpr int64_t kMs = 1'000'000;

TEST(RestartPolicy, FirstRestartIsImmediateThenBacksOffExponentiallyUpToTheCap) {
  RestartPolicy p({.budget = 100,
                   .window_ns = 1000 * kMs,
                   .backoff_initial_ns = 1 * kMs,
                   .backoff_max_ns = 8 * kMs,
                   .stable_period_ns = 10'000 * kMs});
  int64_t now = 0;
  std::vector<int64_t> delays;
  for (int i = 0; i < 6; ++i) {
    now += kMs;
    delays.push_back(p.OnCrash(now, now - kMs / 2).delay_ns);
  }
  EXPECT_EQ(delays, (std::vector<int64_t>{0, 1 * kMs, 2 * kMs, 4 * kMs, 8 * kMs, 8 * kMs}));
}

TEST(RestartPolicy, BudgetSpentWithinTheWindowGivesUp) {
  RestartPolicy p({.budget = 3, .window_ns = 100 * kMs});
  EXPECT_FALSE(p.OnCrash(1 * kMs, 0).give_up);
  EXPECT_FALSE(p.OnCrash(2 * kMs, 1 * kMs).give_up);
  EXPECT_FALSE(p.OnCrash(3 * kMs, 2 * kMs).give_up);
  EXPECT_TRUE(p.OnCrash(4 * kMs, 3 * kMs).give_up);
}

TEST(RestartPolicy, RestartsOutsideTheWindowDoNotCount) {
  RestartPolicy p({.budget = 2, .window_ns = 10 * kMs});
  EXPECT_FALSE(p.OnCrash(1 * kMs, 0).give_up);
  EXPECT_FALSE(p.OnCrash(2 * kMs, 1 * kMs).give_up);
  EXPECT_FALSE(p.OnCrash(50 * kMs, 3 * kMs).give_up);
}

TEST(RestartPolicy, StableDriverIsForgivenAndRestartsImmediately) {
  RestartPolicy p({.budget = 100, .backoff_initial_ns = 1 * kMs, .stable_period_ns = 100 * kMs});
  p.OnCrash(1 * kMs, 0);
  EXPECT_GT(p.OnCrash(2 * kMs, 1 * kMs).delay_ns, 0);
  EXPECT_EQ(p.OnCrash(500 * kMs, 3 * kMs).delay_ns, 0);
}

TEST(RestartPolicy, ResetForgetsTheBudget) {
  RestartPolicy p({.budget = 1, .window_ns = 1000 * kMs});
  EXPECT_FALSE(p.OnCrash(1, 0).give_up);
  EXPECT_TRUE(p.OnCrash(2, 1).give_up);
  p.Reset();
  EXPECT_FALSE(p.OnCrash(3, 2).give_up);
}

TEST(RestartPolicy, CrashesAfterARunLongerThanTheCrashLoopAreRestartedAtOnceEveryTime) {
  // Regression: the backoff used to double on every restart less than a
  // second apart, so a demo with a fault every few hundred ms waited 10, 20,
  // 40 ms for drivers that had been serving fine.
  RestartPolicy p({.budget = 100,
                   .window_ns = 10'000 * kMs,
                   .backoff_initial_ns = 10 * kMs,
                   .crash_loop_ns = 100 * kMs,
                   .stable_period_ns = 1000 * kMs});
  int64_t now = 0;
  for (int i = 0; i < 10; ++i) {
    const int64_t ready = now + kMs;
    now += 300 * kMs;
    auto d = p.OnCrash(now, ready);
    EXPECT_EQ(d.delay_ns, 0) << "crash " << i;
    EXPECT_EQ(d.verdict, RestartPolicy::Verdict::kImmediate);
  }
}

TEST(RestartPolicy, CrashLoopBacksOffUntilADriverOutlivesTheLoopThreshold) {
  RestartPolicy p({.budget = 100,
                   .window_ns = 10'000 * kMs,
                   .backoff_initial_ns = 10 * kMs,
                   .backoff_max_ns = 1000 * kMs,
                   .crash_loop_ns = 100 * kMs,
                   .stable_period_ns = 1000 * kMs});
  EXPECT_EQ(p.OnCrash(1000 * kMs, 500 * kMs).delay_ns, 0);          // after a long run
  EXPECT_EQ(p.OnCrash(1005 * kMs, 1001 * kMs).delay_ns, 10 * kMs);  // 4 ms up: a loop
  EXPECT_EQ(p.OnCrash(1030 * kMs, 1016 * kMs).delay_ns, 20 * kMs);
  auto d = p.OnCrash(1060 * kMs, -1);  // never became ready
  EXPECT_EQ(d.delay_ns, 40 * kMs);
  EXPECT_EQ(d.verdict, RestartPolicy::Verdict::kBackoff);
  EXPECT_EQ(p.OnCrash(1400 * kMs, 1101 * kMs).delay_ns, 0) << "up 299 ms: the loop is over";
  EXPECT_EQ(p.OnCrash(1405 * kMs, 1401 * kMs).delay_ns, 10 * kMs) << "a new loop starts over";
}

TEST(RestartPolicy, BudgetStartsOverAfterAStablePeriod) {
  RestartPolicy p({.budget = 3,
                   .window_ns = 60'000 * kMs,
                   .backoff_initial_ns = 0,
                   .crash_loop_ns = 100 * kMs,
                   .stable_period_ns = 1000 * kMs});
  EXPECT_FALSE(p.OnCrash(1 * kMs, 0).give_up);
  EXPECT_FALSE(p.OnCrash(2 * kMs, 1 * kMs).give_up);
  EXPECT_FALSE(p.OnCrash(3 * kMs, 2 * kMs).give_up);
  EXPECT_EQ(p.restarts_in_window(), 3u);
  // Up 2 s, well inside the 60 s window: forgiven all the same.
  auto d = p.OnCrash(2003 * kMs, 3 * kMs);
  EXPECT_FALSE(d.give_up);
  EXPECT_EQ(p.restarts_in_window(), 1u);
  EXPECT_FALSE(p.OnCrash(2004 * kMs, 2003 * kMs).give_up);
  EXPECT_FALSE(p.OnCrash(2005 * kMs, 2004 * kMs).give_up);
  auto last = p.OnCrash(2006 * kMs, 2005 * kMs);
  EXPECT_TRUE(last.give_up);
  EXPECT_EQ(last.verdict, RestartPolicy::Verdict::kGiveUp);
}

}  // namespace
}  // namespace umbra::runtime
