// RestartPolicy: when to restart a driver, and when to give up on it.
//
// After MINIX's reincarnation server: the first restart is immediate; a driver
// that keeps crashing is restarted after a capped exponential backoff; more
// than `budget` restarts within `window` marks the device failed. A driver that
// stays up for `stable_period` is forgiven (the backoff starts over).
//
//   RestartPolicy policy(RestartPolicy::Options{});
//   auto decision = policy.OnCrash(now);
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
    uint32_t budget = 20;                        // restarts allowed per window
    int64_t window_ns = 10'000'000'000;          // 10 s
    int64_t backoff_initial_ns = 1'000'000;      // second consecutive restart waits 1 ms
    int64_t backoff_max_ns = 500'000'000;        // never more than 0.5 s
    int64_t stable_period_ns = 1'000'000'000;    // up this long: forgiven
  };

  struct Decision {
    bool give_up = false;
    int64_t delay_ns = 0;
  };

  explicit RestartPolicy(Options options) : options_(options) {}

  // A driver crashed at `now_ns`; `up_since_ns` is when it last became ready
  // (or -1 if it never did).
  Decision OnCrash(int64_t now_ns, int64_t up_since_ns);

  // Forget everything (the reset-failed operation).
  void Reset();

  uint32_t consecutive() const { return consecutive_; }
  uint32_t restarts_in_window() const { return static_cast<uint32_t>(recent_.size()); }
  const Options& options() const { return options_; }

 private:
  Options options_;
  uint32_t consecutive_ = 0;   // crashes since the driver was last stable
  std::deque<int64_t> recent_; // restart times inside the window
};

}  // namespace umbra::runtime
