#include "runtime/sandbox/seccomp.h"

#include <fcntl.h>
#include <linux/prctl.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <mutex>

namespace umbra::sandbox {
namespace {

// Calls allowed whatever their arguments. Grouped by what needs them.
constexpr const char* kAllowed[] = {
    // memory
    "brk",
    "mmap",
    "munmap",
    "mprotect",
    "mremap",
    "madvise",
    "msync",
    "mincore",
    "memfd_create",
    // files: the driver's root is read-only but for its /tmp; descriptors it was handed
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "open",
    "openat",
    "close",
    "close_range",
    "lseek",
    "fstat",
    "stat",
    "lstat",
    "newfstatat",
    "statx",
    "fstatfs",
    "statfs",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "getcwd",
    "getdents64",
    "fcntl",
    "dup",
    "dup2",
    "dup3",
    "pipe",
    "pipe2",
    "ftruncate",
    "fsync",
    "fdatasync",
    "mkdir",
    "mkdirat",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "umask",
    // sockets it was handed (the control socket)
    "sendmsg",
    "recvmsg",
    "sendto",
    "recvfrom",
    "sendmmsg",
    "recvmmsg",
    "shutdown",
    "getsockopt",
    "getsockname",
    "getpeername",
    // waiting and events
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "eventfd",
    "eventfd2",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_gettime",
    "futex",
    "futex_waitv",
    "nanosleep",
    "clock_nanosleep",
    "pause",
    "alarm",
    "setitimer",
    "getitimer",
    // signals (sending them is below)
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "sigaltstack",
    "restart_syscall",
    // threads and processes (their number is limited by the cgroup)
    "set_robust_list",
    "get_robust_list",
    "set_tid_address",
    "rseq",
    "fork",
    "vfork",
    "execve",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "arch_prctl",
    "personality",
    // identity, time, scheduling: about itself
    "getpid",
    "gettid",
    "getppid",
    "getpgrp",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getgroups",
    "getresuid",
    "getresgid",
    "getrlimit",
    "setrlimit",
    "getrusage",
    "uname",
    "sysinfo",
    "times",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "getrandom",
    "sched_yield",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getparam",
    "sched_getscheduler",
    "sched_setscheduler",
    "sched_get_priority_min",
    "sched_get_priority_max",
    "getcpu",
    "getpriority",
    "setpriority",
    "membarrier",
};

// Flags clone(2) may not carry: no new namespaces.
constexpr uint64_t kNamespaceFlags =
    CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;

constexpr scmp_datum_t kPrctlAllowed[] = {PR_SET_PDEATHSIG,  PR_GET_PDEATHSIG,    PR_SET_NAME,     PR_GET_NAME,
                                          PR_SET_TIMERSLACK, PR_GET_TIMERSLACK,   PR_GET_DUMPABLE, PR_SET_VMA,
                                          PR_GET_SECCOMP,    PR_GET_NO_NEW_PRIVS, PR_CAPBSET_READ};
constexpr scmp_datum_t kIoctlAllowed[] = {TCGETS, FIONBIO, FIOCLEX, FIONCLEX, FIONREAD};
constexpr scmp_datum_t kSockoptAllowed[] = {SO_SNDBUF, SO_RCVBUF, SO_SNDTIMEO, SO_RCVTIMEO, SO_PASSCRED};

// In its own PID namespace the driver is pid 1: "itself" is pid 1, and 0
// (its process group) for kill(2).
constexpr int kOwnPid = 1;

Result<void> Add(scmp_filter_ctx ctx, const char* name, std::vector<scmp_arg_cmp> args = {}) {
  const int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return {};  // not on this architecture
  const int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, static_cast<unsigned>(args.size()),
                                        args.empty() ? nullptr : args.data());
  if (rc != 0) return FailErrno(std::string("seccomp rule for ") + name, -rc);
  return {};
}

Result<void> AddConditional(scmp_filter_ctx ctx, PidView view) {
  for (scmp_datum_t option : kPrctlAllowed) UMBRA_TRY(Add(ctx, "prctl", {SCMP_A0(SCMP_CMP_EQ, option)}));
  for (scmp_datum_t request : kIoctlAllowed) UMBRA_TRY(Add(ctx, "ioctl", {SCMP_A1(SCMP_CMP_EQ, request)}));
  for (scmp_datum_t option : kSockoptAllowed) {
    UMBRA_TRY(Add(ctx, "setsockopt", {SCMP_A1(SCMP_CMP_EQ, SOL_SOCKET), SCMP_A2(SCMP_CMP_EQ, option)}));
  }
  // getrlimit/setrlimit: its own limits (pid 0); raising a hard one fails anyway.
  UMBRA_TRY(Add(ctx, "prlimit64", {SCMP_A0(SCMP_CMP_EQ, 0)}));
  UMBRA_TRY(Add(ctx, "clone", {SCMP_A0(SCMP_CMP_MASKED_EQ, kNamespaceFlags, 0)}));
  // clone3's flags sit behind a pointer the filter cannot read: ENOSYS makes
  // glibc fall back to clone.
  if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0); rc != 0) {
    return FailErrno("seccomp rule for clone3", -rc);
  }
  switch (view) {
    case PidView::kOwnNamespace:
      UMBRA_TRY(Add(ctx, "kill", {SCMP_A0(SCMP_CMP_EQ, 0)}));
      UMBRA_TRY(Add(ctx, "kill", {SCMP_A0(SCMP_CMP_EQ, kOwnPid)}));
      UMBRA_TRY(Add(ctx, "tgkill", {SCMP_A0(SCMP_CMP_EQ, kOwnPid)}));
      break;
    case PidView::kHostNamespace:
      // Its pid is not known when the filter is built: no PID namespace, no
      // filtering on the target (the uid still keeps the host out of reach).
      UMBRA_TRY(Add(ctx, "kill"));
      UMBRA_TRY(Add(ctx, "tgkill"));
      break;
  }
  return {};
}

Result<std::shared_ptr<const SeccompProgram>> Build(SeccompMode mode, PidView view) {
  const uint32_t deny = mode == SeccompMode::kLog ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
  scmp_filter_ctx ctx = seccomp_init(deny);
  if (ctx == nullptr) return Fail(Errc::kInternal, "seccomp_init failed");
  struct Release {
    scmp_filter_ctx c;
    ~Release() { seccomp_release(c); }
  } release{ctx};
  // A system call of another ABI (i386, x32) is never expected: kill.
  seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  // The launcher sets no_new_privs itself, right before.
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  // A binary search over the system-call numbers rather than a chain of
  // comparisons: every allowed call pays a few instructions, not a hundred.
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  for (const char* name : kAllowed) UMBRA_TRY(Add(ctx, name));
  UMBRA_TRY(AddConditional(ctx, view));
  // libseccomp 2.5 exports to a descriptor only.
  UniqueFd mem(memfd_create("umbra-seccomp", MFD_CLOEXEC));
  if (!mem) return FailErrno("memfd_create");
  if (int rc = seccomp_export_bpf(ctx, mem.get()); rc != 0) return FailErrno("seccomp_export_bpf", -rc);
  const off_t size = lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0) return Fail(Errc::kInternal, "seccomp program has a bad size");
  auto program = std::make_shared<SeccompProgram>();
  program->code.resize(static_cast<size_t>(size) / sizeof(sock_filter));
  if (pread(mem.get(), program->code.data(), static_cast<size_t>(size), 0) != size) {
    return FailErrno("read seccomp program");
  }
  return std::shared_ptr<const SeccompProgram>(std::move(program));
}

}  // namespace

Result<std::shared_ptr<const SeccompProgram>> Filter(SeccompMode mode, PidView view) {
  static std::mutex mu;
  static std::map<std::pair<SeccompMode, PidView>, std::shared_ptr<const SeccompProgram>> built;
  std::lock_guard lock(mu);
  auto& slot = built[{mode, view}];
  if (!slot) slot = UMBRA_TRY(Build(mode, view));
  return slot;
}

std::vector<std::string> DescribeAllowlist() {
  std::vector<std::string> lines;
  for (const char* name : kAllowed) lines.emplace_back(name);
  lines.emplace_back("prctl: PR_SET/GET_PDEATHSIG, PR_SET/GET_NAME, PR_SET/GET_TIMERSLACK, PR_GET_DUMPABLE, "
                     "PR_SET_VMA, PR_GET_SECCOMP, PR_GET_NO_NEW_PRIVS, PR_CAPBSET_READ");
  lines.emplace_back("ioctl: TCGETS, FIONBIO, FIOCLEX, FIONCLEX, FIONREAD");
  lines.emplace_back("setsockopt: SOL_SOCKET with SO_SNDBUF, SO_RCVBUF, SO_SNDTIMEO, SO_RCVTIMEO, SO_PASSCRED");
  lines.emplace_back("prlimit64: its own limits (pid 0)");
  lines.emplace_back("clone: without namespace flags (clone3 answers ENOSYS, and glibc falls back to clone)");
  lines.emplace_back("kill: pid 0 (its process group) or 1 (itself, the init of its PID namespace)");
  lines.emplace_back("tgkill: threads of pid 1 (itself)");
  return lines;
}

std::string SyscallName(int nr) {
  char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
  if (name == nullptr) return "syscall " + std::to_string(nr);
  std::string s = name;
  free(name);
  return s;
}

}  // namespace umbra::sandbox
