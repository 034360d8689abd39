// Bounded spinning that shares the CPU.
//
// A data-path thread that runs out of work polls for a little while before it
// blocks: a peer that answers within microseconds is then seen without paying
// for a sleep and a wake-up (on a virtual machine, waking an idle virtual CPU
// costs tens of microseconds). But a spinner holds a CPU, and when more
// threads are runnable than there are CPUs, the thread it waits for may be the
// one it keeps off the CPU. Two policies deal with that:
//
//   kGiveWay     polls only while no runnable thread is waiting for a CPU
//                (machine-wide, from /proc/loadavg): the user-space
//                counterpart of the kernel's need_resched() check in its own
//                optimistic spinning. On a machine with CPUs to spare it spins
//                for its whole budget; on a saturated one it blocks almost at
//                once. For waits that must not hold up anyone (a standby
//                watching for its probe, recovery steps).
//   kTakeTurns   polls for its whole budget, but every few microseconds lets
//                the threads waiting for its own CPU run first
//                (sched_yield). The spinner stays runnable, so the event it
//                waits for needs no wake-up when it comes. For the data
//                paths, where three busy threads (client, driver, device)
//                may share two CPUs: giving up there made every hand-off a
//                sleep and a cross-CPU wake-up (docs/runtime.md; figures in
//                docs/results.md, "Taking turns, polling, payloads in
//                place").
//
//   Spin idle(kSpinNs, Spin::kTakeTurns);
//   for (;;) {
//     if (TakeWork()) { idle.Reset(); continue; }
//     if (idle.Again()) continue;   // poll again
//     Block();                      // budget spent (or, kGiveWay, a CPU is wanted)
//   }
#pragma once

#include <cstdint>

namespace umbra {

// True when more threads are runnable, machine-wide, than this process may
// run on CPUs (its affinity mask): someone is waiting for a CPU. One pread(2)
// of /proc/loadavg, about a microsecond. False when that cannot be read.
bool CpusContended();

class Spin {
 public:
  enum Policy { kGiveWay, kTakeTurns };

  explicit Spin(int64_t budget_ns, Policy policy = kGiveWay) : budget_ns_(budget_ns), policy_(policy) {}

  // Call each time the awaited condition was found false. True: look again
  // (after a short pause); false: stop spinning and block. Once false, false
  // until Reset().
  bool Again();
  // Work arrived: the next wait starts a fresh budget.
  void Reset() {
    start_ns_ = 0;
    gave_up_ = false;
  }

 private:
  // The first look at the run queue (kGiveWay) or turn given (kTakeTurns)
  // comes after this much spinning (a peer that answers sooner never pays for
  // it), and then again every as often.
  static constexpr int64_t kContentionCheckNs = 5'000;
  int64_t budget_ns_;
  Policy policy_;
  int64_t start_ns_ = 0;
  int64_t next_check_ns_ = 0;
  bool gave_up_ = false;
};

}  // namespace umbra
