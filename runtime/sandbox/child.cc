#include "runtime/sandbox/child.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "runtime/sandbox/sandbox.h"

namespace umbra::sandbox {
namespace {

constexpr int kControlFd = 3;

long Sys(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0) { return syscall(nr, a, b, c, d, e); }
long L(const void* p) { return reinterpret_cast<long>(p); }

bool WriteAll(const char* path, const char* text) {
  const int fd = static_cast<int>(Sys(SYS_openat, AT_FDCWD, L(path), O_WRONLY | O_CLOEXEC));
  if (fd < 0) return false;
  size_t n = 0;
  while (text[n] != '\0') ++n;
  const bool ok = Sys(SYS_write, fd, L(text), static_cast<long>(n)) == static_cast<long>(n);
  Sys(SYS_close, fd);
  return ok;
}

[[noreturn]] void ChildFail(ChildPlan& plan, const char* step) {
  plan.failed_errno = errno;
  plan.failed_step = step;
  Sys(SYS_exit_group, 127);
  __builtin_unreachable();
}

bool MountBind(const RawMount& m) {
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

bool MountOne(const RawMount& m) {
  switch (m.kind) {
    case MountOp::Kind::kMkdir: return Sys(SYS_mkdir, L(m.target), 0755) == 0 || errno == EEXIST;
    case MountOp::Kind::kSymlink: return Sys(SYS_symlink, L(m.source), L(m.target)) == 0;
    case MountOp::Kind::kMount:
      return Sys(SYS_mount, L(m.source), L(m.target), L(m.fstype), static_cast<long>(m.flags), L(m.data)) == 0;
    case MountOp::Kind::kBind: return MountBind(m);
  }
  return false;
}

void BuildRoot(ChildPlan& plan) {
  if (Sys(SYS_mount, 0, L("/"), 0, MS_REC | MS_PRIVATE, 0) != 0) ChildFail(plan, "make / private");
  // What is bound into the new root is cloned first, by its host path: the
  // staging tmpfs may cover it (a binary under /tmp).
  for (RawMount& m : plan.mounts) {
    if (m.kind != MountOp::Kind::kBind) continue;
    m.tree =
        static_cast<int>(Sys(SYS_open_tree, AT_FDCWD, L(m.source), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
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

// The instance's own root: a copy of the template's, or one built now; then
// its own /proc and /tmp.
void EnterRoot(ChildPlan& plan) {
  switch (plan.root) {
    case RootSource::kHost: return;
    case RootSource::kBuild: BuildRoot(plan); break;
    case RootSource::kTemplate:
      if (Sys(SYS_setns, plan.root_template, CLONE_NEWNS) != 0) ChildFail(plan, "enter the root template");
      if (Sys(SYS_unshare, CLONE_NEWNS) != 0) ChildFail(plan, "copy the root template");
      if (Sys(SYS_chdir, L("/")) != 0) ChildFail(plan, "chdir /");
      break;
  }
  for (const RawMount& m : plan.instance_mounts) {
    if (!MountOne(m) && !m.optional) ChildFail(plan, m.target);
  }
}

void SetUpDescriptors(ChildPlan& plan) {
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

void JoinGroupsAndNamespaces(ChildPlan& plan) {
  for (const char* procs : plan.procs_files) {
    if (!WriteAll(procs, "0")) ChildFail(plan, procs);
  }
  if (plan.user_ns) {
    // A non-dumpable host (HardenHost) makes this child's /proc files root's,
    // so it could not write its own maps: dumpable for these three writes.
    // (The flag belongs to the memory the child shares with the host, which
    // is exposed to its own user for these microseconds.)
    const long dumpable = Sys(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0);
    if (dumpable == 0) Sys(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0);
    const bool mapped = WriteAll("/proc/self/setgroups", "deny") && WriteAll("/proc/self/uid_map", plan.uid_map) &&
                        WriteAll("/proc/self/gid_map", plan.gid_map);
    if (dumpable == 0) Sys(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (!mapped) ChildFail(plan, "map the user namespace");
  }
  if (plan.join_net >= 0 && Sys(SYS_setns, plan.join_net, CLONE_NEWNET) != 0)
    ChildFail(plan, "join the network namespace");
  if (plan.join_ipc >= 0 && Sys(SYS_setns, plan.join_ipc, CLONE_NEWIPC) != 0) ChildFail(plan, "join the IPC namespace");
}

void DropPrivilege(ChildPlan& plan) {
  for (const auto& [resource, value] : plan.rlimits) {
    const rlimit r{value, value};
    if (Sys(SYS_prlimit64, 0, resource, L(&r), 0) != 0) ChildFail(plan, "set a limit");
  }
  if (plan.drop_to_driver_uid) {
    if (Sys(SYS_setgroups, 0, 0) != 0) ChildFail(plan, "setgroups");
    if (Sys(SYS_setresgid, kDriverGid, kDriverGid, kDriverGid) != 0) ChildFail(plan, "setresgid");
    if (Sys(SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0) ChildFail(plan, "setresuid");
  }
  if (plan.no_new_privs && Sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ChildFail(plan, "no_new_privs");
  // SPEC_ALLOW: without it, where the CPU offers them, the kernel turns on the
  // speculative-store-bypass and indirect-branch mitigations for a filtered
  // process, which slow tight loops like the rings'. They protect a process's
  // own secrets from code it runs itself; a driver's memory holds nothing the
  // driver may not read.
  if (plan.filter != nullptr &&
      Sys(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, L(plan.filter)) != 0) {
    ChildFail(plan, "install the seccomp filter");
  }
}

}  // namespace

int ChildMain(void* arg) {
  ChildPlan& plan = *static_cast<ChildPlan*>(arg);
  // The host's handlers must not run here: every signal to its default
  // (still blocked, as the host blocked them all around the clone).
  for (int sig = 1; sig < 65; ++sig) {
    struct {
      uintptr_t handler;
      unsigned long flags;
      uintptr_t restorer;
      uint64_t mask;
    } sa{0 /* SIG_DFL */, 0, 0, 0};
    Sys(SYS_rt_sigaction, sig, L(&sa), 0, 8);
  }
  Sys(SYS_setpgid, 0, 0);
  JoinGroupsAndNamespaces(plan);
  SetUpDescriptors(plan);
  EnterRoot(plan);
  DropPrivilege(plan);
  const uint64_t none = 0;
  Sys(SYS_rt_sigprocmask, SIG_SETMASK, L(&none), 0, 8);
  Sys(SYS_execve, L(plan.path), L(plan.argv), L(plan.envp));
  ChildFail(plan, "exec the driver");
}

int SharedNamespacesMain(void* arg) {
  ChildPlan& plan = *static_cast<ChildPlan*>(arg);
  plan.join_net = static_cast<int>(Sys(SYS_openat, AT_FDCWD, L("/proc/thread-self/ns/net"), O_RDONLY | O_CLOEXEC));
  plan.join_ipc = static_cast<int>(Sys(SYS_openat, AT_FDCWD, L("/proc/thread-self/ns/ipc"), O_RDONLY | O_CLOEXEC));
  Sys(SYS_exit, 0);
  return 0;
}

int RootTemplateMain(void* arg) {
  ChildPlan& plan = *static_cast<ChildPlan*>(arg);
  plan.built_namespace =
      static_cast<int>(Sys(SYS_openat, AT_FDCWD, L("/proc/thread-self/ns/mnt"), O_RDONLY | O_CLOEXEC));
  if (plan.built_namespace < 0) ChildFail(plan, "open the new mount namespace");
  BuildRoot(plan);
  Sys(SYS_exit, 0);
  return 0;
}

}  // namespace umbra::sandbox
