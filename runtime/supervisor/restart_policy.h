// RestartPolicy: when to restart a driver, and when to give up on it.
//
// Recovery first: a driver that crashes after running for a while is
// restarted at once, however many times that happens, because the sooner it
// is back the shorter the gap an application sees. Only a *crash loop* is
// slowed down: a crash less than `crash_loop` after the previous restart (the
// new driver did not get going) waits `backoff_initial`, doubling with each
// further crash of the loop up to `backoff_max`. A crash after a run of at
// least `crash_loop` ends the loop (the next restart is immediate again).
// More than `budget` restarts within `window` marks the device failed; a
// driver that stays up for `stable_period` is forgiven: the restarts it had
// before no longer count against the budget. docs/runtime.md sets this beside
// MINIX's reincarnation server and systemd's Restart=/StartLimit*.
//
//   RestartPolicy policy(RestartPolicy::Options{});
//   auto decision = policy.OnCrash(now, up_since);
//   if (decision.give_up) MarkFailed(); else RestartAfter(decision.delay_ns);
//
// Thread safety: none; owned by one DriverHost on the supervisor thread.
#pragma once

#include <cstdint>
#include <deque>

namespace umbra::runtime {

class RestartPolicy {
 public:
  struct Options {
    uint32_t budget = 20;                      // restarts allowed per window
    int64_t window_ns = 10'000'000'000;        // 10 s
    int64_t backoff_initial_ns = 1'000'000;    // second restart of a crash loop waits 1 ms
    int64_t backoff_max_ns = 500'000'000;      // never more than 0.5 s
    int64_t crash_loop_ns = 30'000'000;        // up less than this: still in a crash loop
    int64_t stable_period_ns = 1'000'000'000;  // up this long: earlier restarts forgiven
  };

  // Why a crash got the delay it got (recorded in logs and tests).
  enum class Verdict {
    kImmediate,  // after a run of at least crash_loop (or the first crash): restart now
    kBackoff,    // a crash loop: restart after delay_ns
    kGiveUp,     // the budget is spent
  };

  struct Decision {
    bool give_up = false;
    int64_t delay_ns = 0;
    Verdict verdict = Verdict::kImmediate;
  };

  explicit RestartPolicy(Options options) : options_(options) {}

  // A driver crashed at `now_ns`; `up_since_ns` is when the instance that
  // crashed became ready, or -1 if it never did (a crash in probe).
  Decision OnCrash(int64_t now_ns, int64_t up_since_ns);

  // Forget everything (the reset-failed operation).
  void Reset();

  uint32_t consecutive() const { return consecutive_; }
  uint32_t restarts_in_window() const { return static_cast<uint32_t>(recent_.size()); }
  const Options& options() const { return options_; }

 private:
  int64_t BackoffFor(uint32_t consecutive) const;

  Options options_;
  uint32_t consecutive_ = 0;    // restarts in the current crash loop (1: the loop's first)
  std::deque<int64_t> recent_;  // restart times inside the window
};

const char* RestartVerdictName(RestartPolicy::Verdict v);

}  // namespace umbra::runtime
