// Spawning driver processes.
//
// In a sandbox (runtime/sandbox: clone into new namespaces, a read-only root,
// an unprivileged uid, seccomp, limits, a cgroup of its own) unless the
// request turns it off; without one, posix_spawn (vfork+exec inside glibc).
// Either way the cost does not grow with the host's size; the child gets only
// its control socket as fd 3, stdin from /dev/null, its own process group,
// and a scrubbed environment. The SDK sets PR_SET_PDEATHSIG in the child and,
// outside a PID namespace, checks that its parent is still the host.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "runtime/sandbox/sandbox.h"

namespace umbra::runtime {

inline constexpr int kDriverControlFd = 3;

struct SpawnRequest {
  std::string binary;                                // path of the driver executable
  std::vector<std::string> args;                     // extra arguments after the binary name
  int control_fd = -1;                               // becomes fd 3 in the child
  bool inherit_stdio = false;                        // stdout/stderr to the host's, else /dev/null
  bool core_dumps = false;                           // leave RLIMIT_CORE alone (else 0)
  const sandbox::SandboxOptions* sandbox = nullptr;  // null: no sandbox
  sandbox::InstanceCgroup* cgroup = nullptr;         // joined by the child (may be null)
};

struct SpawnedProcess {
  pid_t pid = -1;
  UniqueFd pidfd;  // for exit notification and race-free signalling
};

Result<SpawnedProcess> SpawnDriver(const SpawnRequest& request);

// Tells when a process being killed or stopped can no longer run its own
// code: every thread is exiting (PF_EXITING, set when it starts to die),
// stopped, a zombie, gone — or was asleep in the kernel when the signal was
// sent and has not been on a CPU since (it can leave the kernel only through
// that signal, SIGKILL or SIGSTOP, which no handler can catch).
//
//   ExitWatch watch(pid);          // any time before: lists the threads
//   watch.Snapshot();              // just before the signal: notes which
//   kill(pid, SIGKILL);            //   sleep and how often each ran
//   while (!watch.LeftUserSpace()) nap();
//
// A driver signalled while idle is past user space at the first look; one
// signalled while running must first be scheduled to take the signal. Each
// look is one or two pread(2) of /proc files kept open. Valid while the
// caller holds the process unreaped.
class ExitWatch {
 public:
  explicit ExitWatch(pid_t pid);
  // Notes each thread's state (listing them again if their number changed).
  void Snapshot();
  // Every thread was asleep in the kernel at the snapshot.
  bool AllAsleep() const;
  bool LeftUserSpace();

 private:
  struct Thread {
    UniqueFd stat;           // /proc/<pid>/task/<tid>/stat
    UniqueFd schedstat;      // /proc/<pid>/task/<tid>/schedstat
    uint64_t scheduled = 0;  // times put on a CPU, at the snapshot (0: unknown)
    bool asleep = false;     // sleeping or stopped at the snapshot
  };
  void List();
  pid_t pid_;
  UniqueFd task_dir_;            // /proc/<pid>/task: its link count tells the thread count
  std::vector<Thread> threads_;  // those not yet seen past user space
};

// Moves the thread `pid` (a process's main thread) to SCHED_IDLE: it runs
// only on CPUs nothing else wants. For a driver about to be stopped or
// killed, so that what it still runs, then its exit (unmapping, closing), does
// not preempt the host's loop or compete with its successor. One system call;
// other threads keep their policy.
void YieldCpuOf(pid_t pid);
// Back to the ordinary policy (SCHED_OTHER) for the thread `pid`: a standby
// spawned at idle priority that is about to take over.
void NormalCpuOf(pid_t pid);

// Finds a driver binary: an absolute or relative path that exists is taken as
// is; otherwise `name` is looked up in $UMBRA_DRIVER_PATH (colon-separated),
// next to the running executable, and in the build tree's drivers/ folders.
Result<std::string> FindDriverBinary(const std::string& name);

}  // namespace umbra::runtime
