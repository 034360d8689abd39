// CPU time of a driver process, for a watchdog that must not mistake a
// starved driver for a hung one.
//
// CpuTime reads, for every thread of a process, /proc/<pid>/task/<tid>/schedstat
// (the time it spent on a CPU, and the time it spent runnable but waiting for
// one, counted when the wait ends) and its state (R: running or waiting for a
// CPU now). OwnTime turns that into the driver's *own time*: the time it
// could have used. Between two looks, the wall time less the waits that ended
// in between — unless some thread is runnable now and the driver has not just
// been heard from: then it may be in the middle of a wait the kernel has not
// counted yet, and only the CPU time the process got counts. (A driver whose
// message was just read has just run: no wait of its is under way.) A missed
// heartbeat counts only in own time, so
//
//   * a driver that is runnable but not given a CPU (a saturated machine)
//     accrues nothing, or what it ran;
//   * a driver that spins without sending heartbeats accrues the CPU time it
//     gets: a hang is caught after two periods of CPU time;
//   * a driver blocked for good (a deadlock, a stop, a sleep in a hang
//     failpoint) accrues wall time: asleep, it waits for no CPU.
//
//   OwnTime clock(pid, MonotonicNanos());
//   ...  // on every heartbeat:
//   own_at_last_heartbeat = clock.Advance(MonotonicNanos(), Heard::kJustNow);
//   ...  // on every watchdog tick while one is late:
//   if (clock.Advance(MonotonicNanos(), Heard::kNotLately) - own_at_last_heartbeat > 2 * period) Hung();
//
// When /proc cannot be read (no schedstat in the kernel, the process gone) the
// wait counts as zero: own time is wall time, as a watchdog without this had it.
//
// Thread safety: none; each object belongs to the supervisor's loop thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

#include "base/unique_fd.h"

namespace umbra::runtime {

struct CpuSample {
  int64_t run_ns = 0;   // on a CPU, summed over the threads alive now
  int64_t wait_ns = 0;  // runnable, waiting for a CPU, summed likewise (waits that ended)
  int threads = 0;
  bool runnable = false;  // some thread is running or waiting for a CPU now (state R)
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

// Whether the driver was just heard from (its message read a moment ago).
enum class Heard { kJustNow, kNotLately };

class OwnTime {
 public:
  OwnTime(pid_t pid, int64_t now_ns);
  // Moves the clock to `now_ns` by the own time since the last call (at
  // most the wall time). Returns the own time so far.
  int64_t Advance(int64_t now_ns, Heard heard);
  int64_t own_ns() const { return own_ns_; }
  // Wall time not counted as its own since construction (it waited for a CPU).
  int64_t waited_ns() const { return waited_ns_; }

 private:
  CpuTime cpu_;
  int64_t last_wall_ns_;
  int64_t last_run_ns_ = 0;
  int64_t last_wait_ns_ = 0;
  int64_t own_ns_ = 0;
  int64_t waited_ns_ = 0;
};

}  // namespace umbra::runtime
