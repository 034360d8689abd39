// MisbehaviourWatch: floods and CPU held while idle, as a pure state machine.
#include "runtime/supervisor/misbehaviour.h"

#include <gtest/gtest.h>

namespace umbra::runtime {
namespace {

constexpr int64_t kMs = 1'000'000;

TEST(MisbehaviourWatch, MessagesUpToTheRateAreFineOneMoreIsAFlood) {
  MisbehaviourWatch w({.messages_per_second = 100});
  for (int i = 0; i < 100; ++i) ASSERT_FALSE(w.OnMessage(i * kMs)) << i;
  auto flood = w.OnMessage(100 * kMs);
  ASSERT_TRUE(flood);
  EXPECT_NE(flood->find("control-message flood"), std::string::npos);
}

TEST(MisbehaviourWatch, TheMessageCountStartsAgainEachSecond) {
  MisbehaviourWatch w({.messages_per_second = 100});
  for (int second = 0; second < 5; ++second) {
    for (int i = 0; i < 100; ++i) ASSERT_FALSE(w.OnMessage(second * 1000 * kMs + i * kMs));
  }
}

TEST(MisbehaviourWatch, ACpuHeldWhileIdleForAWholeWindowIsAHog) {
  MisbehaviourWatch w({.idle_cpu_window_ns = 100 * kMs, .idle_cpu_share = 0.5});
  EXPECT_FALSE(w.OnTick(0, true, 0));
  EXPECT_FALSE(w.OnTick(50 * kMs, true, 50 * kMs));
  auto hog = w.OnTick(100 * kMs, true, 100 * kMs);
  ASSERT_TRUE(hog);
  EXPECT_NE(hog->find("held a CPU with nothing outstanding"), std::string::npos);
}

TEST(MisbehaviourWatch, LittleCpuWhileIdleOrMuchWhileBusyIsFine) {
  MisbehaviourWatch w({.idle_cpu_window_ns = 100 * kMs, .idle_cpu_share = 0.5});
  EXPECT_FALSE(w.OnTick(0, true, 0));
  EXPECT_FALSE(w.OnTick(100 * kMs, true, 10 * kMs));   // 10% of a CPU
  EXPECT_FALSE(w.OnTick(150 * kMs, false, 60 * kMs));  // busy: the stretch ends
  EXPECT_FALSE(w.OnTick(200 * kMs, true, 110 * kMs));  // a new stretch begins
  EXPECT_FALSE(w.OnTick(250 * kMs, false, 160 * kMs));
}

TEST(MisbehaviourWatch, NoCpuFigureNoJudgement) {
  MisbehaviourWatch w({.idle_cpu_window_ns = 100 * kMs});
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(w.OnTick(i * 100 * kMs, true, std::nullopt));
}

}  // namespace
}  // namespace umbra::runtime
