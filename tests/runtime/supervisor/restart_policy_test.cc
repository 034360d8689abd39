#include "runtime/supervisor/restart_policy.h"

#include <gtest/gtest.h>

namespace umbra::runtime {
namespace {

constexpr int64_t kMs = 1'000'000;

TEST(RestartPolicy, FirstRestartIsImmediateThenBacksOffExponentiallyUpToTheCap) {
  RestartPolicy p({.budget = 100, .window_ns = 1000 * kMs, .backoff_initial_ns = 1 * kMs,
                   .backoff_max_ns = 8 * kMs, .stable_period_ns = 10'000 * kMs});
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

}  // namespace
}  // namespace umbra::runtime
