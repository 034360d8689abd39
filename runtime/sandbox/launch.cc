// Launch: clone(2) into new namespaces, build the sandbox, exec the driver.
//
// The child is a vfork-style clone (CLONE_VM | CLONE_VFORK, like glibc's
// posix_spawn): it costs the same whatever the host's size, and the host's
// thread resumes once the child has exec'd or failed. Sharing the host's
// memory, the child only walks a plan computed beforehand (ChildPlan) with raw
// system calls — no allocation, no lock, no libc state — and reports a failed
// step through the plan itself.

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "runtime/sandbox/cgroup.h"
#include "runtime/sandbox/root_fs.h"
#include "runtime/sandbox/sandbox.h"
#include "runtime/sandbox/seccomp.h"

namespace umbra::sandbox {
namespace {

constexpr int kControlFd = 3;
constexpr size_t kChildStack = 256 * 1024;

struct RawMount {
  MountOp::Kind kind;
  const char* source;
  const char* target;
  const char* fstype;
  const char* data;
  unsigned long flags;
  bool is_file;
  bool optional;
  int tree = -1;  // kBind: the source's tree, cloned before the staging tmpfs covers anything
};

// Everything the child does, decided by the host. Pointers into the host's
// memory, which the child shares until it execs.
struct ChildPlan {
  const char* path = nullptr;          // what to exec (inside the new root when there is one)
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  int control_fd = -1;
  bool inherit_stdio = false;
  std::vector<const char*> procs_files;  // cgroups to join
  // User namespace (the host is not root): "65534 <uid> 1".
  bool user_ns = false;
  const char* uid_map = nullptr;
  const char* gid_map = nullptr;
  bool drop_to_driver_uid = false;     // the host is root: setresuid(65534)
  bool mount_ns = false;
  const char* staging = nullptr;
  std::vector<RawMount> mounts;
  std::vector<std::pair<int, rlim_t>> rlimits;
  bool no_new_privs = false;
  const sock_fprog* filter = nullptr;
  // Written by the child when a step fails.
  const char* failed_step = nullptr;
  int failed_errno = 0;
};

// ---- the child: raw system calls only ----

long Sys(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0) {
  return syscall(nr, a, b, c, d, e);
}

bool WriteAll(const char* path, const char* text) {
  const int fd = static_cast<int>(Sys(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path), O_WRONLY | O_CLOEXEC));
  if (fd < 0) return false;
  size_t n = 0;
  while (text[n] != '\0') ++n;
  const bool ok = Sys(SYS_write, fd, reinterpret_cast<long>(text), static_cast<long>(n)) == static_cast<long>(n);
  Sys(SYS_close, fd);
  return ok;
}

[[noreturn]] void ChildFail(ChildPlan& plan, const char* step) {
  plan.failed_errno = errno;
  plan.failed_step = step;
  Sys(SYS_exit_group, 127);
  __builtin_unreachable();
}

bool MountOne(const RawMount& m) {
  auto L = [](const void* p) { return reinterpret_cast<long>(p); };
  switch (m.kind) {
    case MountOp::Kind::kMkdir:
      return Sys(SYS_mkdir, L(m.target), 0755) == 0 || errno == EEXIST;
    case MountOp::Kind::kSymlink:
      return Sys(SYS_symlink, L(m.source), L(m.target)) == 0;
    case MountOp::Kind::kMount:
      return Sys(SYS_mount, L(m.source), L(m.target), L(m.fstype), static_cast<long>(m.flags), L(m.data)) == 0;
    case MountOp::Kind::kBind: {
      if (m.is_file) {
        const long fd = Sys(SYS_openat, AT_FDCWD, L(m.target), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return false;
        Sys(SYS_close, fd);
      } else if (Sys(SYS_mkdir, L(m.target), 0755) != 0 && errno != EEXIST) {
        return false;
      }
      if (m.tree < 0) return false;
      const long moved = Sys(SYS_move_mount, m.tree, L(""), AT_FDCWD, L(m.target), MOVE_MOUNT_F_EMPTY_PATH);
      Sys(SYS_close, m.tree);
      if (moved != 0) return false;
      return Sys(SYS_mount, 0, L(m.target), 0, static_cast<long>(MS_REMOUNT | MS_BIND | m.flags), 0) == 0;
    }
  }
  return false;
}

void BuildRoot(ChildPlan& plan) {
  auto L = [](const void* p) { return reinterpret_cast<long>(p); };
  if (Sys(SYS_mount, 0, L("/"), 0, MS_REC | MS_PRIVATE, 0) != 0) ChildFail(plan, "make / private");
  // What is bound into the new root is cloned first, by its host path: the
  // staging tmpfs may cover it (a binary under /tmp).
  for (RawMount& m : plan.mounts) {
    if (m.kind != MountOp::Kind::kBind) continue;
    m.tree = static_cast<int>(Sys(SYS_open_tree, AT_FDCWD, L(m.source), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
    if (m.tree < 0 && !m.optional) ChildFail(plan, m.source);
  }
  for (const RawMount& m : plan.mounts) {
    if (!MountOne(m) && !m.optional) ChildFail(plan, m.target);
  }
  // pivot_root(".", "."): the old root ends up stacked under the new one, and
  // is detached right away.
  if (Sys(SYS_chdir, L(plan.staging)) != 0) ChildFail(plan, "chdir to the new root");
  if (Sys(SYS_pivot_root, L("."), L(".")) != 0) ChildFail(plan, "pivot_root");
  if (Sys(SYS_umount2, L("."), MNT_DETACH) != 0) ChildFail(plan, "detach the host's root");
  if (Sys(SYS_chdir, L("/")) != 0) ChildFail(plan, "chdir /");
  if (Sys(SYS_mount, 0, L("/"), 0, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, 0) != 0) {
    ChildFail(plan, "make the root read-only");
  }
}

void SetUpDescriptors(ChildPlan& plan) {
  auto L = [](const void* p) { return reinterpret_cast<long>(p); };
  const long null = Sys(SYS_openat, AT_FDCWD, L("/dev/null"), O_RDWR);
  if (null < 0) ChildFail(plan, "open /dev/null");
  Sys(SYS_dup2, null, 0);
  if (!plan.inherit_stdio) {
    Sys(SYS_dup2, null, 1);
    Sys(SYS_dup2, null, 2);
  }
  if (null > 2 && null != kControlFd) Sys(SYS_close, null);
  if (plan.control_fd == kControlFd) {
    if (Sys(SYS_fcntl, kControlFd, F_SETFD, 0) != 0) ChildFail(plan, "keep the control socket");
  } else if (Sys(SYS_dup2, plan.control_fd, kControlFd) != kControlFd) {
    ChildFail(plan, "control socket to fd 3");
  }
  // Nothing else of the host's crosses the exec, whatever its flags.
  Sys(SYS_close_range, kControlFd + 1, ~0u, CLOSE_RANGE_CLOEXEC);
}

void DropPrivilege(ChildPlan& plan) {
  for (const auto& [resource, value] : plan.rlimits) {
    const rlimit r{value, value};
    if (Sys(SYS_prlimit64, 0, resource, reinterpret_cast<long>(&r), 0) != 0) ChildFail(plan, "set a limit");
  }
  if (plan.drop_to_driver_uid) {
    if (Sys(SYS_setgroups, 0, 0) != 0) ChildFail(plan, "setgroups");
    if (Sys(SYS_setresgid, kDriverGid, kDriverGid, kDriverGid) != 0) ChildFail(plan, "setresgid");
    if (Sys(SYS_setresuid, kDriverUid, kDriverUid, kDriverUid) != 0) ChildFail(plan, "setresuid");
  }
  if (plan.no_new_privs && Sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ChildFail(plan, "no_new_privs");
  if (plan.filter != nullptr &&
      Sys(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, reinterpret_cast<long>(plan.filter)) != 0) {
    ChildFail(plan, "install the seccomp filter");
  }
}

int ChildMain(void* arg) {
  ChildPlan& plan = *static_cast<ChildPlan*>(arg);
  // The host's handlers must not run here: every signal to its default
  // (still blocked, as the host blocked them all around the clone).
  for (int sig = 1; sig < 65; ++sig) {
    struct { uintptr_t handler; unsigned long flags; uintptr_t restorer; uint64_t mask; } sa{0 /* SIG_DFL */, 0, 0, 0};
    Sys(SYS_rt_sigaction, sig, reinterpret_cast<long>(&sa), 0, 8);
  }
  Sys(SYS_setpgid, 0, 0);
  for (const char* procs : plan.procs_files) {
    if (!WriteAll(procs, "0")) ChildFail(plan, procs);
  }
  if (plan.user_ns) {
    if (!WriteAll("/proc/self/setgroups", "deny") || !WriteAll("/proc/self/uid_map", plan.uid_map) ||
        !WriteAll("/proc/self/gid_map", plan.gid_map)) {
      ChildFail(plan, "map the user namespace");
    }
  }
  SetUpDescriptors(plan);
  if (plan.mount_ns) BuildRoot(plan);
  DropPrivilege(plan);
  const uint64_t none = 0;
  Sys(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&none), 0, 8);
  Sys(SYS_execve, reinterpret_cast<long>(plan.path), reinterpret_cast<long>(plan.argv),
      reinterpret_cast<long>(plan.envp));
  ChildFail(plan, "exec the driver");
}

// ---- the host: plan, clone, check ----

struct Storage {
  std::vector<std::string> argv_strings;
  std::vector<char*> argv;
  std::string env_lang = "LANG=C";
  char* envp[2] = {nullptr, nullptr};
  std::string uid_map, gid_map;
  RootPlan root;
  std::shared_ptr<const SeccompProgram> filter;
  sock_fprog fprog{};
};

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Result<void> PlanSandbox(const LaunchSpec& spec, ChildPlan& plan, Storage& st, int& flags) {
  const SandboxOptions& o = *spec.options;
  const bool root = geteuid() == 0;
  if (o.pid_namespace) flags |= CLONE_NEWPID;
  if (o.net_namespace) flags |= CLONE_NEWNET;
  if (o.ipc_namespace) flags |= CLONE_NEWIPC;
  if (!root) {
    flags |= CLONE_NEWUSER;
    plan.user_ns = true;
    st.uid_map = std::to_string(kDriverUid) + " " + std::to_string(geteuid()) + " 1";
    st.gid_map = std::to_string(kDriverGid) + " " + std::to_string(getegid()) + " 1";
    plan.uid_map = st.uid_map.c_str();
    plan.gid_map = st.gid_map.c_str();
  }
  plan.drop_to_driver_uid = root;
  if (o.mount_namespace) {
    flags |= CLONE_NEWNS;
    st.root = PlanRoot(Basename(spec.binary), spec.binary, o.limits.tmpfs_bytes);
    plan.mount_ns = true;
    plan.staging = st.root.staging.c_str();
    plan.path = st.root.exec_path.c_str();
    for (const MountOp& m : st.root.ops) {
      // A proc of the host's PID namespace would show the host: none then.
      if (m.fstype == "proc" && !o.pid_namespace) continue;
      plan.mounts.push_back({m.kind, m.source.c_str(), m.target.c_str(), m.fstype.c_str(), m.data.c_str(), m.flags,
                             m.is_file, m.optional});
    }
  }
  if (o.limits.open_files > 0) plan.rlimits.emplace_back(RLIMIT_NOFILE, o.limits.open_files);
  if (o.limits.address_space_bytes > 0) plan.rlimits.emplace_back(RLIMIT_AS, o.limits.address_space_bytes);
  if (o.limits.cpu_seconds > 0) plan.rlimits.emplace_back(RLIMIT_CPU, o.limits.cpu_seconds);
  plan.no_new_privs = true;
  if (o.seccomp != SeccompMode::kOff) {
    const PidView view = o.pid_namespace ? PidView::kOwnNamespace : PidView::kHostNamespace;
    st.filter = UMBRA_TRY(Filter(o.seccomp, view));
    st.fprog = st.filter->prog();
    plan.filter = &st.fprog;
  }
  return {};
}

Result<Launched> CloneChild(ChildPlan& plan, int flags, const std::string& binary) {
  void* stack = mmap(nullptr, kChildStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return FailErrno("child stack");
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pidfd = -1;
  const pid_t pid = clone(ChildMain, static_cast<char*>(stack) + kChildStack,
                          flags | CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &plan, &pidfd);
  const int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  munmap(stack, kChildStack);
  if (pid < 0) return FailErrno("clone a sandboxed child for " + binary, clone_errno);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (plan.failed_step != nullptr) {
    siginfo_t info{};
    waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED);
    close(pidfd);
    return FailErrno(std::string("sandbox for ") + binary + ": " + plan.failed_step, plan.failed_errno);
  }
  return Launched{pid, UniqueFd(pidfd)};
}

}  // namespace

Result<Launched> Launch(const LaunchSpec& spec) {
  ChildPlan plan;
  Storage st;
  st.argv_strings.push_back(spec.binary);
  for (const auto& a : spec.args) st.argv_strings.push_back(a);
  if (!spec.core_dumps) st.argv_strings.push_back("--no-core");
  for (auto& a : st.argv_strings) st.argv.push_back(a.data());
  st.argv.push_back(nullptr);
  st.envp[0] = st.env_lang.data();
  plan.argv = st.argv.data();
  plan.envp = st.envp;
  plan.path = spec.binary.c_str();
  plan.control_fd = spec.control_fd;
  plan.inherit_stdio = spec.inherit_stdio;
  if (!spec.core_dumps) plan.rlimits.emplace_back(RLIMIT_CORE, 0);
  int flags = 0;
  if (spec.options != nullptr && spec.options->mode == SandboxMode::kOn) {
    UMBRA_TRY(PlanSandbox(spec, plan, st, flags));
    if (spec.cgroup != nullptr) {
      for (const auto& f : spec.cgroup->procs_files()) plan.procs_files.push_back(f.c_str());
    }
  }
  return CloneChild(plan, flags, spec.binary);
}

void HardenHost() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
      spdlog::warn("driver sandbox: cannot make the host non-dumpable: {}", strerror(errno));
    }
  });
}

}  // namespace umbra::sandbox
