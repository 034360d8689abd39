// CPU time of a driver process, for a watchdog that must not mistake a
// starved driver for a hung one.
//
// CpuTime reads, for every thread of a process, /proc/<pid>/task/<tid>/schedstat:
// the time it spent on a CPU and the time it spent runnable but waiting for
// one (the run queue). OwnTime turns that into the driver's *own time*: wall
// time less the time it waited for a CPU. A missed heartbeat counts only in
// own time, so
//
//   * a driver that is runnable but not given a CPU (a saturated machine)
//     accrues nothing: its wait grows as fast as the wall clock;
//   * a driver that spins without sending heartbeats accrues the CPU time it
//     gets (it is on a CPU, or waiting for its next turn, which is subtracted);
//   * a driver blocked for good (a deadlock, a sleep in a hang failpoint)
//     accrues wall time: asleep, it waits for no CPU, so nothing is
//     subtracted.
//
//   OwnTime clock(pid, MonotonicNanos());
//   ...  // on every heartbeat, and on every watchdog tick while one is late:
//   const int64_t own = clock.Advance(MonotonicNanos());
//   if (own - own_at_last_heartbeat > 2 * period) Hung();
//
// When /proc cannot be read (no schedstat in the kernel, the process gone) the
// wait counts as zero: own time is wall time, as a watchdog without this had it.
//
// Thread safety: none; each object belongs to the supervisor's loop thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

#include "runtime/base/unique_fd.h"

namespace umbra::runtime {

struct CpuSample {
  int64_t run_ns = 0;   // on a CPU, summed over the threads alive now
  int64_t wait_ns = 0;  // runnable, waiting for a CPU, summed likewise
  int threads = 0;
};

class CpuTime {
 public:
  explicit CpuTime(pid_t pid);
  // Sums the schedstat lines of every thread; nullopt when the process's
  // /proc entries cannot be read.
  std::optional<CpuSample> Read() const;

 private:
  UniqueFd task_dir_;  // /proc/<pid>/task, opened at construction
};

class OwnTime {
 public:
  OwnTime(pid_t pid, int64_t now_ns);
  // Moves the clock to `now_ns`: by the wall time since the last call, less
  // the time the process's threads waited for a CPU meanwhile (at most all of
  // it). Returns the own time so far.
  int64_t Advance(int64_t now_ns);
  int64_t own_ns() const { return own_ns_; }
  // Time its threads spent waiting for a CPU since construction.
  int64_t waited_ns() const { return waited_ns_; }

 private:
  CpuTime cpu_;
  int64_t last_wall_ns_;
  int64_t last_wait_ns_ = 0;
  int64_t own_ns_ = 0;
  int64_t waited_ns_ = 0;
};

}  // namespace umbra::runtime
