// Launch: clone(2) into new namespaces, build the sandbox, exec the driver.
//
// The host computes a ChildPlan (child.h), clones a vfork-style child that
// walks it, and resumes once the child has exec'd or failed. What can be made
// once is made once and reused by every spawn, where the host is root:
//   - one empty network namespace and one empty IPC namespace, joined by
//     every driver (making and tearing down a network namespace per spawn
//     costs hundreds of microseconds);
//   - per driver binary, a mount namespace holding the assembled read-only
//     root (a root template); each instance copies it (setns + unshare, a
//     dozen mounts) and mounts its own /proc and /tmp.
// Without root (a user namespace per driver) each spawn makes its own.

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <atomic>
#include <map>
#include <mutex>

#include <spdlog/spdlog.h>

#include "runtime/sandbox/cgroup.h"
#include "runtime/sandbox/child.h"
#include "runtime/sandbox/root_fs.h"
#include "runtime/sandbox/sandbox.h"
#include "runtime/sandbox/seccomp.h"

namespace umbra::sandbox {
namespace {

constexpr size_t kChildStack = 256 * 1024;

#if defined(__x86_64__)
// clone3(2) with a function to run on the new stack, as glibc's clone() does
// for clone(2) (glibc has no clone3 wrapper). The child calls fn(arg) and
// exits with its result; the parent gets the pid or -errno.
extern "C" long umbra_clone3_run(struct clone_args* args, size_t size, int (*fn)(void*), void* arg);
asm(R"(
  .text
  .globl umbra_clone3_run
  .type umbra_clone3_run, @function
umbra_clone3_run:
  push %r12
  push %r13
  mov %rdx, %r12
  mov %rcx, %r13
  mov $435, %eax
  syscall
  test %rax, %rax
  jz 1f
  pop %r13
  pop %r12
  ret
1:
  xor %ebp, %ebp
  mov %r13, %rdi
  call *%r12
  mov %eax, %edi
  mov $231, %eax
  syscall
  hlt
  .size umbra_clone3_run, .-umbra_clone3_run
)");
constexpr bool kHaveClone3 = true;
#else
constexpr bool kHaveClone3 = false;
#endif

// Clones `fn(plan)` with `flags` | CLONE_VM | CLONE_VFORK: the caller resumes
// once the child has exec'd or exited. With a v2 cgroup (`cgroup_fd` >= 0)
// the child is born in it. Returns the pid (and the pidfd when CLONE_PIDFD is
// asked for), or -1 with errno.
pid_t CloneVfork(int (*fn)(void*), ChildPlan& plan, int flags, int* pidfd, int cgroup_fd = -1) {
  void* stack = mmap(nullptr, kChildStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return -1;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = -1;
  int err = 0;
  // Always the raw system call where it can be: ThreadSanitizer intercepts
  // glibc's clone() and would take a CLONE_VM child for a fork of the host.
  if (kHaveClone3) {
#if defined(__x86_64__)
    clone_args args{};
    args.flags = static_cast<uint64_t>(flags) | CLONE_VM | CLONE_VFORK;
    if (cgroup_fd >= 0) args.flags |= CLONE_INTO_CGROUP;
    args.pidfd = reinterpret_cast<uint64_t>(pidfd);
    args.exit_signal = SIGCHLD;
    args.stack = reinterpret_cast<uint64_t>(stack);
    args.stack_size = kChildStack;
    args.cgroup = cgroup_fd >= 0 ? static_cast<uint64_t>(cgroup_fd) : 0;
    const long rc = umbra_clone3_run(&args, sizeof args, fn, &plan);
    pid = rc < 0 ? -1 : static_cast<pid_t>(rc);
    err = rc < 0 ? static_cast<int>(-rc) : 0;
#endif
  } else {
    pid = clone(fn, static_cast<char*>(stack) + kChildStack, flags | CLONE_VM | CLONE_VFORK | SIGCHLD, &plan, pidfd);
    err = errno;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  munmap(stack, kChildStack);
  errno = err;
  return pid;
}

std::vector<RawMount> Raw(const std::vector<MountOp>& ops) {
  std::vector<RawMount> out;
  for (const MountOp& m : ops) {
    out.push_back(
        {m.kind, m.source.c_str(), m.target.c_str(), m.fstype.c_str(), m.data.c_str(), m.flags, m.is_file, m.optional});
  }
  return out;
}

// ---- what is made once ----

struct SharedNamespaces {
  int net = -1;
  int ipc = -1;
};

// Drivers cannot meet in the shared namespaces: the allowlist has no
// socket(2), socketpair(2) or System V IPC.
const SharedNamespaces& Shared() {
  static SharedNamespaces ns;
  static std::once_flag once;
  std::call_once(once, [] {
    if (geteuid() != 0) return;  // a user namespace cannot join the host's: one each then
    ChildPlan plan;
    // CLONE_FILES: the descriptors the child opens are the host's.
    const pid_t pid = CloneVfork(SharedNamespacesMain, plan, CLONE_FILES | CLONE_NEWNET | CLONE_NEWIPC, nullptr);
    if (pid > 0) waitpid(pid, nullptr, 0);
    ns = {plan.join_net, plan.join_ipc};
    if (ns.net < 0 || ns.ipc < 0) spdlog::warn("driver sandbox: no shared namespaces; one per driver instead");
  });
  return ns;
}

// Root templates, one per driver binary (as it is now: a rebuilt binary gets
// a new one).
struct RootTemplate {
  dev_t dev = 0;
  ino_t ino = 0;
  timespec mtime{};
  int ns = -1;
};

Result<int> TemplateFor(const std::string& binary, const RootPlan& root) {
  static std::mutex mu;
  static std::map<std::string, RootTemplate> templates;
  struct stat st {};
  if (stat(binary.c_str(), &st) != 0) return FailErrno("stat " + binary);
  std::lock_guard lock(mu);
  RootTemplate& t = templates[binary];
  if (t.ns >= 0 && t.dev == st.st_dev && t.ino == st.st_ino && t.mtime.tv_sec == st.st_mtim.tv_sec &&
      t.mtime.tv_nsec == st.st_mtim.tv_nsec) {
    return t.ns;
  }
  ChildPlan plan;
  plan.staging = root.staging.c_str();
  plan.mounts = Raw(root.ops);
  const pid_t pid = CloneVfork(RootTemplateMain, plan, CLONE_FILES | CLONE_NEWNS, nullptr);
  if (pid < 0) return FailErrno("clone the root builder");
  int status = 0;
  waitpid(pid, &status, 0);
  if (plan.failed_step != nullptr) {
    if (plan.built_namespace >= 0) close(plan.built_namespace);
    return FailErrno(std::string("driver root for ") + binary + ": " + plan.failed_step, plan.failed_errno);
  }
  if (t.ns >= 0) close(t.ns);
  t = {st.st_dev, st.st_ino, st.st_mtim, plan.built_namespace};
  return t.ns;
}

// ---- one spawn ----

struct Storage {
  std::vector<std::string> argv_strings;
  std::vector<char*> argv;
  std::string env_lang = "LANG=C";
  char* envp[2] = {nullptr, nullptr};
  std::string uid_map, gid_map;
  RootPlan root;
  std::shared_ptr<const SeccompProgram> filter;
  sock_fprog fprog{};
  std::string v2_procs;
};

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A uid of this instance's own (see kDriverUidBase).
uid_t NextDriverUid() {
  static std::atomic<uint32_t> sequence{0};
  const uint32_t host = static_cast<uint32_t>(getpid()) & 0xFFFFF;
  return kDriverUidBase + host * 1024 + (sequence.fetch_add(1, std::memory_order_relaxed) & 1023);
}

void PlanIdentity(ChildPlan& plan, Storage& st, int& flags) {
  if (geteuid() == 0) {
    plan.drop_to_driver_uid = true;
    plan.uid = NextDriverUid();
    return;
  }
  flags |= CLONE_NEWUSER;
  plan.user_ns = true;
  st.uid_map = std::to_string(kDriverUid) + " " + std::to_string(geteuid()) + " 1";
  st.gid_map = std::to_string(kDriverGid) + " " + std::to_string(getegid()) + " 1";
  plan.uid_map = st.uid_map.c_str();
  plan.gid_map = st.gid_map.c_str();
}

void PlanNamespaces(const SandboxOptions& o, ChildPlan& plan, int& flags) {
  if (o.pid_namespace) flags |= CLONE_NEWPID;
  const SharedNamespaces& shared = Shared();
  if (o.net_namespace && shared.net >= 0) {
    plan.join_net = shared.net;
  } else if (o.net_namespace) {
    flags |= CLONE_NEWNET;
  }
  if (o.ipc_namespace && shared.ipc >= 0) {
    plan.join_ipc = shared.ipc;
  } else if (o.ipc_namespace) {
    flags |= CLONE_NEWIPC;
  }
}

Result<void> PlanRootFs(const LaunchSpec& spec, ChildPlan& plan, Storage& st, int& flags) {
  const SandboxOptions& o = *spec.options;
  if (!o.mount_namespace) return {};
  st.root = PlanRoot(Basename(spec.binary), spec.binary, o.limits.tmpfs_bytes);
  plan.path = st.root.exec_path.c_str();
  plan.instance_mounts = Raw(st.root.instance_ops);
  // A proc of the host's PID namespace would show the host: none then.
  if (!o.pid_namespace)
    std::erase_if(plan.instance_mounts, [](const RawMount& m) { return m.fstype == std::string("proc"); });
  if (!plan.user_ns) {
    plan.root = RootSource::kTemplate;
    plan.root_template = UMBRA_TRY(TemplateFor(spec.binary, st.root));
    return {};
  }
  flags |= CLONE_NEWNS;
  plan.root = RootSource::kBuild;
  plan.staging = st.root.staging.c_str();
  plan.mounts = Raw(st.root.ops);
  return {};
}

Result<void> PlanSandbox(const LaunchSpec& spec, ChildPlan& plan, Storage& st, int& flags) {
  const SandboxOptions& o = *spec.options;
  PlanIdentity(plan, st, flags);
  PlanNamespaces(o, plan, flags);
  UMBRA_TRY(PlanRootFs(spec, plan, st, flags));
  if (o.limits.open_files > 0) plan.rlimits.emplace_back(RLIMIT_NOFILE, o.limits.open_files);
  // Counted per uid: the instance's own where the host is root, its user
  // namespace's otherwise.
  if (o.limits.processes > 0) plan.rlimits.emplace_back(RLIMIT_NPROC, o.limits.processes);
  if (o.limits.address_space_bytes > 0) plan.rlimits.emplace_back(RLIMIT_AS, o.limits.address_space_bytes);
  if (o.limits.cpu_seconds > 0) plan.rlimits.emplace_back(RLIMIT_CPU, o.limits.cpu_seconds);
  plan.no_new_privs = true;
  if (o.seccomp != SeccompMode::kOff) {
    const PidView view = o.pid_namespace ? PidView::kOwnNamespace : PidView::kHostNamespace;
    st.filter = UMBRA_TRY(Filter(o.seccomp, view));
    st.fprog = st.filter->prog();
    plan.filter = &st.fprog;
  }
  if (spec.cgroup != nullptr) {
    for (const auto& f : spec.cgroup->procs_files()) plan.procs_files.push_back(f.c_str());
    // Without clone3 the child joins its v2 group like the others.
    if (!kHaveClone3 && !spec.cgroup->v2_dir().empty()) st.v2_procs = spec.cgroup->v2_dir() + "/cgroup.procs";
    if (!st.v2_procs.empty()) plan.procs_files.push_back(st.v2_procs.c_str());
  }
  return {};
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
  if (spec.options != nullptr && spec.options->mode == SandboxMode::kOn) UMBRA_TRY(PlanSandbox(spec, plan, st, flags));
  int pidfd = -1;
  const bool sandboxed = spec.options != nullptr && spec.options->mode == SandboxMode::kOn;
  const int cgroup_fd = sandboxed && spec.cgroup != nullptr ? spec.cgroup->v2_fd() : -1;
  const pid_t pid = CloneVfork(ChildMain, plan, flags | CLONE_PIDFD, &pidfd, cgroup_fd);
  if (pid < 0) return FailErrno("clone a sandboxed child for " + spec.binary);
  if (plan.failed_step != nullptr) {
    siginfo_t info{};
    waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED);
    close(pidfd);
    return FailErrno(std::string("sandbox for ") + spec.binary + ": " + plan.failed_step, plan.failed_errno);
  }
  return Launched{pid, UniqueFd(pidfd)};
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
