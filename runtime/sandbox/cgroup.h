// One driver instance's control groups.
//
// Every sandboxed instance gets a group of its own, created beside the host
// (a child of the host's own group in each hierarchy), joined by the child
// before exec, and killed whole when the instance ends — clean exit or not —
// so that no process of a driver outlives its instance:
//
//   - cgroup v2 (pure, or the "unified" hierarchy of a hybrid system):
//     cgroup.kill, cpu.stat, and pids.max / memory.max where those
//     controllers are enabled. The child is born in it (clone3's
//     CLONE_INTO_CGROUP), which costs nothing; moving a process into a group
//     afterwards costs an RCU grace period (milliseconds);
//   - cgroup v1 memory (memory.limit_in_bytes) when a memory limit is asked
//     for and v2 has no memory controller (joined by the child: it pays that
//     grace period); cpuacct when there is no v2 group.
// The process limit is RLIMIT_NPROC on the instance's own uid (launch.cc).
//
// What is missing is said once in the log (a warning), never an error: the
// PID namespace already ends every process of an instance with it.
//
//   auto group = InstanceCgroup::Create("nic0.3", limits);   // before the spawn
//   spec.cgroup = group.get();                               // the child joins
//   ...
//   group->Kill();                                           // every exit
//
// Thread safety: one instance's group is used by one thread at a time.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "runtime/sandbox/sandbox.h"

namespace umbra::sandbox {

class InstanceCgroup {
 public:
  // Creates the groups named `name` (unique among the host's instances; the
  // host's pid is added) with `limits` applied. Null when no hierarchy is
  // writable.
  static std::unique_ptr<InstanceCgroup> Create(const std::string& name, const SandboxLimits& limits);
  ~InstanceCgroup();  // kills what is left, then removes the groups
  InstanceCgroup(const InstanceCgroup&) = delete;
  InstanceCgroup& operator=(const InstanceCgroup&) = delete;

  // The v2 group, for CLONE_INTO_CGROUP (-1 when none).
  int v2_fd() const { return v2_fd_.get(); }
  // The cgroup.procs files (v1) a child writes "0" to, to join.
  const std::vector<std::string>& procs_files() const { return procs_files_; }
  // SIGKILLs every process in the group (cgroup.kill, else each pid listed).
  void Kill();
  // CPU time the group's processes have had, in nanoseconds; nullopt when no
  // hierarchy accounts for it.
  std::optional<int64_t> CpuNanos() const;
  // How many processes the group holds now (0 when unknown). One pread of a
  // descriptor kept open: cheap enough for every recovery.
  size_t ProcessCount() const;
  // The group's directory in the v2 hierarchy (empty when none).
  const std::string& v2_dir() const { return v2_dir_; }

 private:
  InstanceCgroup() = default;
  std::vector<std::string> dirs_;         // every group created, removed at the end
  std::vector<std::string> procs_files_;  // v1 groups, joined by the child
  UniqueFd v2_fd_;                        // the v2 group, the child is born in it
  UniqueFd procs_fd_;                     // its cgroup.procs, read by ProcessCount without a path lookup
  std::string v2_dir_;                    // cgroup.kill and cpu.stat live here
  std::string cpuacct_dir_;               // v1 CPU accounting, when there is no v2 group
};

}  // namespace umbra::sandbox
