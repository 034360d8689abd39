// The sandbox a driver instance runs in.
//
// A driver is untrusted: it must not be able to touch the host, its neighbour
// drivers, the files or the machine. The host starts each driver instance
// through Launch(), which builds the sandbox in the child before the driver's
// first instruction runs (clone(2) into new namespaces, then exec):
//
//   - no privilege: where the host is root, a uid of its own (kDriverUidBase)
//     and gid 65534; otherwise a user namespace mapping the host's uid to 65534. No
//     capabilities, PR_SET_NO_NEW_PRIVS, nothing set-uid reachable;
//   - nothing of the host visible: own PID namespace (the driver is its init,
//     so nothing it forks outlives it), mount namespace whose root is a
//     read-only tmpfs holding the driver binary, the system's library folders
//     and /dev/{null,zero,urandom}; a /proc showing only the driver's own
//     processes; a small private tmpfs at /tmp the only writable path; an
//     empty network namespace (a loopback that is down) and an empty IPC
//     namespace, shared by all drivers where the host is root;
//   - a seccomp allowlist (seccomp.h), installed last before exec;
//   - limits: open files, processes, address space, CPU time (rlimits) and, in
//     a cgroup of its own (cgroup.h), memory where it is cheap or asked for;
//     the cgroup is killed whole when the instance ends.
//
// What the driver can touch is what the host hands it over its control socket
// (fd 3): its rings, pool, doorbells and register window.
//
//   sandbox::LaunchSpec spec{.binary = path, .args = {...}, .control_fd = fd,
//                            .options = &options, .cgroup = cgroup.get()};
//   sandbox::Launched child = UMBRA_TRY(sandbox::Launch(spec));
//
// Thread safety: Launch may be called from any thread; it blocks the calling
// thread until the child has exec'd (vfork semantics).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace umbra::sandbox {

class InstanceCgroup;

enum class SandboxMode {
  kOn,   // the default
  kOff,  // for debugging a driver: it runs as the host's user, in the host's namespaces
};

// What the seccomp filter does with a system call outside the allowlist.
enum class SeccompMode {
  kEnforce,  // SIGSYS: the SDK reports the call by name and the driver dies
  kLog,      // allowed, and logged by the kernel (audit type 1326): to build a list
  kOff,      // no filter
};

// When the memory limit is enforced.
enum class MemoryLimit {
  kWhereFree,  // through cgroup v2 memory.max, where v2 has the memory controller
  kAlways,     // else through cgroup v1 too, which costs each spawn milliseconds (cgroup.h)
};

// Limits on one driver instance; 0 means "no limit".
struct SandboxLimits {
  uint64_t open_files = 256;             // RLIMIT_NOFILE
  uint64_t address_space_bytes = 0;      // RLIMIT_AS (off: sanitizer builds reserve terabytes)
  uint64_t cpu_seconds = 0;              // RLIMIT_CPU, total over the instance's life
  uint64_t processes = 64;               // RLIMIT_NPROC on its own uid (threads count), and pids.max
  uint64_t memory_bytes = 512ull << 20;  // cgroup memory limit
  MemoryLimit memory_limit = MemoryLimit::kWhereFree;
  uint64_t tmpfs_bytes = 4ull << 20;  // the private /tmp
};

struct SandboxOptions {
  SandboxMode mode = SandboxMode::kOn;
  SeccompMode seccomp = SeccompMode::kEnforce;
  SandboxLimits limits;
  // Parts that can be left out (for measuring what each costs, and for
  // machines that lack one). Each is on by default.
  bool pid_namespace = true;
  bool mount_namespace = true;
  bool net_namespace = true;
  bool ipc_namespace = true;
  bool cgroup = true;
};

struct LaunchSpec {
  std::string binary;                       // the driver executable, a host path
  std::vector<std::string> args;            // after argv[0]
  int control_fd = -1;                      // becomes fd 3
  bool inherit_stdio = false;               // stdout/stderr to the host's, else /dev/null
  bool core_dumps = false;                  // leave RLIMIT_CORE alone (else 0)
  const SandboxOptions* options = nullptr;  // null or kOff: no sandbox
  InstanceCgroup* cgroup = nullptr;         // joined before exec (may be null)
};

struct Launched {
  pid_t pid = -1;
  UniqueFd pidfd;
};

// Starts `spec.binary` in its sandbox: returns once the child has exec'd, or
// an error naming the step that failed (which mount, which limit).
Result<Launched> Launch(const LaunchSpec& spec);

// Makes the host process non-dumpable, so that neither /proc/<host>/mem nor
// process_vm_readv nor ptrace reach it from a process of another uid — and
// from one of the same uid only with CAP_SYS_PTRACE. Once per process;
// idempotent.
void HardenHost();

// The gid a sandboxed driver runs as, and its uid inside a user namespace.
inline constexpr uid_t kDriverUid = 65534;
inline constexpr gid_t kDriverGid = 65534;
// Where the host is root, each instance runs as a uid of its own, so that
// RLIMIT_NPROC (counted per uid) limits that instance alone and no two
// drivers share an owner: kDriverUidBase + (host pid mod 2^20) * 1024 + a
// sequence number mod 1024.
inline constexpr uid_t kDriverUidBase = 1'000'000'000;

}  // namespace umbra::sandbox
