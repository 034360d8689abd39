// Misbehaviour that is not a crash: a driver that floods the host with
// control messages, or that holds a CPU while it has nothing to do.
//
// One MisbehaviourWatch per driver instance, fed by the host's event loop:
// OnMessage for every control message the driver sends, OnTick from the
// watchdog with whether anything is outstanding and the CPU time the
// instance's cgroup has used. Each returns what it found, for the host to
// charge to this driver and recover from like a hang.
//
//   MisbehaviourWatch w(limits);
//   if (auto flood = w.OnMessage(now)) Violation(inst, *flood);
//   if (auto hog = w.OnTick(now, idle, inst->cgroup->CpuNanos())) OnDetect(...);
//
// Thread safety: none; the event loop's thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace umbra::runtime {

struct MisbehaviourLimits {
  // More control messages than this in one second is a flood (heartbeats,
  // logs and statistics together come to a few hundred at most).
  uint64_t messages_per_second = 10'000;
  // Using more than `idle_cpu_share` of a CPU for `idle_cpu_window_ns` on
  // end with nothing outstanding (no request, no call) is a hog. 0: off.
  int64_t idle_cpu_window_ns = 2'000'000'000;
  double idle_cpu_share = 0.5;
};

class MisbehaviourWatch {
 public:
  explicit MisbehaviourWatch(MisbehaviourLimits limits) : limits_(limits) {}

  // A control message arrived at `now_ns`; a description when it is one too many.
  std::optional<std::string> OnMessage(int64_t now_ns);
  // A watchdog tick: `idle` when nothing is outstanding, `cpu_ns` the
  // instance's CPU time so far (nullopt when unknown: no judgement).
  std::optional<std::string> OnTick(int64_t now_ns, bool idle, std::optional<int64_t> cpu_ns);

 private:
  MisbehaviourLimits limits_;
  int64_t window_start_ns_ = 0;  // the current one-second message window
  uint64_t window_messages_ = 0;
  int64_t idle_since_ns_ = -1;     // wall clock when the idle stretch began (-1: busy)
  int64_t idle_since_cpu_ns_ = 0;  // CPU time then
};

}  // namespace umbra::runtime
