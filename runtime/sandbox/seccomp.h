// The driver sandbox's system-call allowlist (seccomp-bpf, built with libseccomp).
//
// The list is what the SDK, its libraries (glibc, libstdc++, protobuf, spdlog,
// Boost.Asio and Boost.Context) and the sample drivers call, found by running
// them under strace and under the filter's logging mode (SeccompMode::kLog).
// Some calls are allowed only with some arguments: signals only to the
// driver's own processes, clone without namespace flags, prctl and ioctl for
// a few harmless requests, setsockopt without the *BUFFORCE options. Every
// other call — ptrace, process_vm_*, setsid/setpgid, mount, unshare/setns,
// socket, bpf, io_uring, pidfd_* … — raises SIGSYS (the SDK reports it by
// name, then the driver dies) or, in the logging mode, is logged by the
// kernel and allowed.
#pragma once

#include <linux/filter.h>

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "runtime/sandbox/sandbox.h"

namespace umbra::sandbox {

struct SeccompProgram {
  std::vector<sock_filter> code;
  sock_fprog prog() const {
    return sock_fprog{static_cast<unsigned short>(code.size()), const_cast<sock_filter*>(code.data())};
  }
};

// What decides the program: the mode, and whether the driver is the init of
// a PID namespace of its own (then "its own processes" can be told by pid).
enum class PidView { kOwnNamespace, kHostNamespace };

// The compiled filter, built once per (mode, view) and kept.
Result<std::shared_ptr<const SeccompProgram>> Filter(SeccompMode mode, PidView view);

// The allowlist, one line per rule ("kill: pid 0 or 1 only"), for `umbra sandbox allowlist`.
std::vector<std::string> DescribeAllowlist();

// The name of system call `nr` on this architecture ("ptrace"), or "syscall <nr>".
std::string SyscallName(int nr);

}  // namespace umbra::sandbox
