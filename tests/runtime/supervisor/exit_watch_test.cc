// ExitWatch: a killed (or stopped) process is past user space at once when it
// was asleep in the kernel, and only once it runs into its exit (or its stop)
// when it was running.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iterator>
#include <thread>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "runtime/supervisor/spawn.h"

namespace umbra::runtime {
namespace {

constexpr int64_t kSec = 1'000'000'000;

// The state letter of `pid` in /proc, or 0.
char StateOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  const auto paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() ? 0 : line[paren + 2];
}

// Waits until `pid` shows `state`; false after 5 s.
bool WaitForState(pid_t pid, char state) {
  const int64_t deadline = MonotonicNanos() + 5 * kSec;
  while (StateOf(pid) != state) {
    if (MonotonicNanos() > deadline) return false;
    usleep(1000);
  }
  return true;
}

class Child {
 public:
  explicit Child(bool spin) {
    pid_ = fork();
    if (pid_ == 0) {
      if (spin) {
        for (;;) CpuRelax();
      }
      for (;;) pause();
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

TEST(ExitWatchTest, AChildAsleepWhenKilledIsPastUserSpaceAtTheFirstLook) {
  Child child(/*spin=*/false);
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(WaitForState(child.pid(), 'S'));
  ExitWatch watch(child.pid());
  watch.Snapshot();
  EXPECT_TRUE(watch.AllAsleep());
  ASSERT_EQ(kill(child.pid(), SIGKILL), 0);
  // Either it has not run since (so it can only leave through the signal),
  // or it ran, and then it ran into its exit: no waiting either way — but
  // for the few microseconds between the kill waking it and its exit
  // starting, when a look can fall.
  bool left = watch.LeftUserSpace();
  for (int i = 0; i < 100 && !left; ++i) {
    usleep(10);
    left = watch.LeftUserSpace();
  }
  EXPECT_TRUE(left);
}

TEST(ExitWatchTest, AChildRunningWhenKilledIsWaitedForUntilItExits) {
  Child child(/*spin=*/true);
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(WaitForState(child.pid(), 'R'));
  ExitWatch watch(child.pid());
  watch.Snapshot();
  EXPECT_FALSE(watch.AllAsleep()) << "a spinning thread is not asleep";
  EXPECT_FALSE(watch.LeftUserSpace()) << "not killed yet: still running its code";
  ASSERT_EQ(kill(child.pid(), SIGKILL), 0);
  const int64_t deadline = MonotonicNanos() + 5 * kSec;
  bool left = false;
  while (!(left = watch.LeftUserSpace()) && MonotonicNanos() < deadline) usleep(100);
  EXPECT_TRUE(left);
}

TEST(ExitWatchTest, AChildRunningWhenStoppedIsPastUserSpaceOnceStoppedAndStillAlive) {
  Child child(/*spin=*/true);
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(WaitForState(child.pid(), 'R'));
  ExitWatch watch(child.pid());
  watch.Snapshot();
  EXPECT_FALSE(watch.LeftUserSpace()) << "not stopped yet: still running its code";
  ASSERT_EQ(kill(child.pid(), SIGSTOP), 0);
  const int64_t deadline = MonotonicNanos() + 5 * kSec;
  bool left = false;
  while (!(left = watch.LeftUserSpace()) && MonotonicNanos() < deadline) usleep(100);
  EXPECT_TRUE(left);
  EXPECT_EQ(StateOf(child.pid()), 'T') << "stopped, not dead: the host kills it later";
}

TEST(ExitWatchTest, AThreadStartedAfterTheWatchWasMadeIsWatchedToo) {
  // The child starts a spinning thread once the watch exists, and its first
  // thread then sleeps: a watch that still knew only the first thread would
  // call the child asleep, and past user space at once.
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    char c;
    (void)read(go[0], &c, 1);
    std::thread t([] {
      for (;;) CpuRelax();
    });
    for (;;) pause();
  }
  ASSERT_GT(pid, 0);
  ExitWatch watch(pid);  // one thread, asleep in read()
  ASSERT_EQ(write(go[1], "x", 1), 1);
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  const int64_t deadline = MonotonicNanos() + 5 * kSec;
  while (std::distance(std::filesystem::directory_iterator(task), std::filesystem::directory_iterator{}) < 2 &&
         MonotonicNanos() < deadline) {
    usleep(1000);
  }
  ASSERT_TRUE(WaitForState(pid, 'S'));  // the first thread, in pause()
  watch.Snapshot();
  EXPECT_FALSE(watch.AllAsleep()) << "the new thread spins";
  EXPECT_FALSE(watch.LeftUserSpace()) << "not killed yet: the new thread runs its code";
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  bool left = false;
  while (!(left = watch.LeftUserSpace()) && MonotonicNanos() < deadline) usleep(100);
  EXPECT_TRUE(left);
  waitpid(pid, nullptr, 0);
  close(go[0]);
  close(go[1]);
}

}  // namespace
}  // namespace umbra::runtime
