// Spawning driver processes.
//
// posix_spawn (vfork+exec inside glibc), so the cost does not grow with the
// host's size; the child gets only its control socket as fd 3 (every other
// descriptor of the host is close-on-exec), stdin from /dev/null, its own
// process group, and a scrubbed environment. The SDK sets PR_SET_PDEATHSIG in
// the child and checks that its parent is still the host.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "runtime/base/result.h"
#include "runtime/base/unique_fd.h"

namespace umbra::runtime {

inline constexpr int kDriverControlFd = 3;

struct SpawnRequest {
  std::string binary;               // path of the driver executable
  std::vector<std::string> args;    // extra arguments after the binary name
  int control_fd = -1;              // becomes fd 3 in the child
  bool inherit_stdio = false;       // stdout/stderr to the host's, else /dev/null
  bool core_dumps = false;          // leave RLIMIT_CORE alone (else 0)
};

struct SpawnedProcess {
  pid_t pid = -1;
  UniqueFd pidfd;  // for exit notification and race-free signalling
};

Result<SpawnedProcess> SpawnDriver(const SpawnRequest& request);

// True once no thread of `pid` can run its own code again: every thread is
// exiting (PF_EXITING, set when it starts to die), a zombie, or gone. A
// process sent SIGKILL gets there within microseconds, long before its memory
// is torn down. Valid while the caller holds the process unreaped.
bool ProcessLeftUserSpace(pid_t pid);

// Finds a driver binary: an absolute or relative path that exists is taken as
// is; otherwise `name` is looked up in $UMBRA_DRIVER_PATH (colon-separated),
// next to the running executable, and in the build tree's drivers/ folders.
Result<std::string> FindDriverBinary(const std::string& name);

}  // namespace umbra::runtime
