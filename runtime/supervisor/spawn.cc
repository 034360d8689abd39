#include "runtime/supervisor/spawn.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>

namespace umbra::runtime {
namespace {

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

std::filesystem::path SelfDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path{} : exe.parent_path();
}

bool IsExecutable(const std::filesystem::path& p) {
  return ::access(p.c_str(), X_OK) == 0 && std::filesystem::is_regular_file(p);
}

// The driver's share of the CPUs, without preempting a running thread when it
// wakes: SCHED_BATCH, so that sending it a message or a signal does not hand
// the host's CPU to it mid-recovery. (Neither posix_spawn nor the sandbox's
// launcher sets it; the driver has barely started when it is set.) Then the
// pidfd, if the launcher did not return one.
Result<SpawnedProcess> Finish(pid_t pid, UniqueFd pidfd) {
  const sched_param batch{};
  (void)sched_setscheduler(pid, SCHED_BATCH, &batch);
  if (!pidfd) {
    pidfd.reset(PidfdOpen(pid));
    if (!pidfd) {
      int err = errno;
      kill(pid, SIGKILL);
      return FailErrno("pidfd_open", err);
    }
    fcntl(pidfd.get(), F_SETFD, FD_CLOEXEC);
  }
  return SpawnedProcess{pid, std::move(pidfd)};
}

Result<SpawnedProcess> SpawnSandboxed(const SpawnRequest& request) {
  sandbox::LaunchSpec spec{.binary = request.binary,
                           .args = {},
                           .control_fd = request.control_fd,
                           .inherit_stdio = request.inherit_stdio,
                           .core_dumps = request.core_dumps,
                           .options = request.sandbox,
                           .cgroup = request.cgroup};
  // Inside a PID namespace of its own the driver's parent is nobody it can
  // name (getppid() is 0): the check on the host's pid is for the rest.
  if (!request.sandbox->pid_namespace) spec.args.push_back("--host-pid=" + std::to_string(getpid()));
  for (const auto& a : request.args) spec.args.push_back(a);
  sandbox::Launched child = UMBRA_TRY(sandbox::Launch(spec));
  return Finish(child.pid, std::move(child.pidfd));
}

}  // namespace

Result<SpawnedProcess> SpawnDriver(const SpawnRequest& request) {
  if (request.sandbox != nullptr && request.sandbox->mode == sandbox::SandboxMode::kOn) {
    return SpawnSandboxed(request);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  struct Cleanup {
    posix_spawn_file_actions_t* a;
    posix_spawnattr_t* b;
    ~Cleanup() {
      posix_spawn_file_actions_destroy(a);
      posix_spawnattr_destroy(b);
    }
  } cleanup{&actions, &attr};

  // dup2 onto fd 3 clears close-on-exec; if the fd already is 3, dup2 would
  // be a no-op that keeps the flag, so go through a spare descriptor then.
  UniqueFd spare;
  int control = request.control_fd;
  if (control == kDriverControlFd) {
    spare.reset(fcntl(control, F_DUPFD_CLOEXEC, 10));
    if (!spare) return FailErrno("dup control fd");
    control = spare.get();
  }
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (!request.inherit_stdio) {
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&actions, control, kDriverControlFd);

  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_USEVFORK);

  std::vector<std::string> argv_store{request.binary};
  argv_store.push_back("--host-pid=" + std::to_string(getpid()));
  if (!request.core_dumps) argv_store.push_back("--no-core");
  for (const auto& a : request.args) argv_store.push_back(a);
  std::vector<char*> argv;
  for (auto& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);
  // A scrubbed environment: nothing of the host's leaks into the driver.
  std::string env_lang = "LANG=C";
  char* envp[] = {env_lang.data(), nullptr};

  pid_t pid = -1;
  int rc = posix_spawn(&pid, request.binary.c_str(), &actions, &attr, argv.data(), envp);
  if (rc != 0) return FailErrno("spawn " + request.binary, rc);
  return Finish(pid, UniqueFd());
}

Result<std::string> FindDriverBinary(const std::string& name) {
  namespace fs = std::filesystem;
  if (name.find('/') != std::string::npos) {
    if (IsExecutable(name)) return name;
    return Fail(Errc::kNotFound, "driver binary " + name + " does not exist or is not executable");
  }
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("UMBRA_DRIVER_PATH")) {
    std::string s = env;
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find(':', start);
      if (end == std::string::npos) end = s.size();
      if (end > start) dirs.emplace_back(s.substr(start, end - start));
      start = end + 1;
    }
  }
  std::vector<fs::path> roots;
  if (const char* build = std::getenv("UMBRA_BUILD_DIR")) roots.emplace_back(build);
  fs::path self = SelfDir();
  if (!self.empty()) {
    dirs.push_back(self);
    // Walk up from the executable to find the build tree's drivers/ folder.
    for (fs::path p = self; !p.empty() && p != p.root_path(); p = p.parent_path()) {
      roots.push_back(p);
    }
  }
  // "umbra-driver-echo" lives in drivers/echo/ of the build tree.
  std::string folder = name;
  if (folder.rfind("umbra-driver-", 0) == 0) folder = folder.substr(13);
  for (const auto& r : roots) dirs.push_back(r / "drivers" / folder);
  for (const auto& d : dirs) {
    fs::path candidate = d / name;
    if (IsExecutable(candidate)) return candidate.string();
  }
  return Fail(Errc::kNotFound, "driver binary '" + name +
                                   "' not found (searched UMBRA_DRIVER_PATH, next to the "
                                   "executable and the build tree)");
}

void YieldCpuOf(pid_t pid) {
  const sched_param none{};
  (void)sched_setscheduler(pid, SCHED_IDLE, &none);
}

void NormalCpuOf(pid_t pid) {
  const sched_param none{};
  (void)sched_setscheduler(pid, SCHED_OTHER, &none);
}

namespace {

// The state letter and the flags of a /proc/<pid>/task/<tid>/stat line.
// False when the line does not parse.
bool ParseStat(const char* buf, char& state, unsigned long& flags) {
  // "tid (comm) state ppid pgrp session tty_nr tpgid flags ...": comm may
  // hold anything, so parse from the last ')'.
  const char* close_paren = nullptr;
  for (const char* c = buf; *c != '\0'; ++c) {
    if (*c == ')') close_paren = c;
  }
  return close_paren != nullptr && std::sscanf(close_paren + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) == 2;
}

// One pread of a /proc file kept open; empty when the task is gone.
std::string_view ReadProc(int fd, char (&buf)[512]) {
  const ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return {};
  buf[n] = '\0';
  return {buf, static_cast<size_t>(n)};
}

// The third field of /proc/<pid>/task/<tid>/schedstat: how many times the
// thread was put on a CPU. 0 when the kernel keeps no such count.
uint64_t ScheduledCount(int fd) {
  char buf[512];
  if (ReadProc(fd, buf).empty()) return 0;
  unsigned long long run = 0, wait = 0, count = 0;
  return std::sscanf(buf, "%llu %llu %llu", &run, &wait, &count) == 3 ? count : 0;
}

}  // namespace

ExitWatch::ExitWatch(pid_t pid) : pid_(pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/task", static_cast<int>(pid_));
  task_dir_ = UniqueFd(open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  List();
}

void ExitWatch::List() {
  threads_.clear();
  if (!task_dir_.valid()) return;  // gone: nothing to watch
  // The directory is read through a copy of the descriptor kept open, from
  // its start: the threads of now.
  DIR* dir = fdopendir(dup(task_dir_.get()));
  if (dir == nullptr) return;
  rewinddir(dir);
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char file[300];
    std::snprintf(file, sizeof file, "%s/stat", e->d_name);
    Thread t{.stat = UniqueFd(openat(task_dir_.get(), file, O_RDONLY | O_CLOEXEC))};
    if (!t.stat.valid()) continue;  // this thread is gone
    std::snprintf(file, sizeof file, "%s/schedstat", e->d_name);
    t.schedstat = UniqueFd(openat(task_dir_.get(), file, O_RDONLY | O_CLOEXEC));
    threads_.push_back(std::move(t));
  }
  closedir(dir);
}

void ExitWatch::Snapshot() {
  // A task directory links to itself, its parent and one entry per thread
  // (an fstat, cheaper than reading a stat file): list again if it moved.
  struct stat st {};
  if (!task_dir_.valid() || fstat(task_dir_.get(), &st) != 0 || st.st_nlink != threads_.size() + 2) List();
  char buf[512];
  char state = 0;
  unsigned long flags = 0;
  for (Thread& t : threads_) {
    // The count first, then the state: if the count has not moved when we
    // look again after the kill, the thread never got a CPU in between.
    t.scheduled = t.schedstat.valid() ? ScheduledCount(t.schedstat.get()) : 0;
    t.asleep = t.scheduled > 0 && !ReadProc(t.stat.get(), buf).empty() && ParseStat(buf, state, flags) &&
               (state == 'S' || state == 'D' || state == 'T' || state == 't');
  }
}

bool ExitWatch::AllAsleep() const {
  return std::all_of(threads_.begin(), threads_.end(), [](const Thread& t) { return t.asleep; });
}

bool ExitWatch::LeftUserSpace() {
  constexpr unsigned long kPfExiting = 0x4;  // include/linux/sched.h
  for (size_t i = 0; i < threads_.size();) {
    Thread& t = threads_[i];
    bool left = false;
    char buf[512];
    char state = 0;
    unsigned long flags = 0;
    if (ReadProc(t.stat.get(), buf).empty()) {
      left = true;  // reaped
    } else if (t.asleep && ScheduledCount(t.schedstat.get()) == t.scheduled) {
      // Off the CPUs, inside the kernel, since before the signal: it can
      // only leave the kernel through that signal (SIGKILL or SIGSTOP).
      left = true;
    } else if (ParseStat(buf, state, flags)) {
      left = state == 'Z' || state == 'X' || state == 'T' || (flags & kPfExiting) != 0;
    }
    if (!left) return false;
    threads_.erase(threads_.begin() + static_cast<ptrdiff_t>(i));  // past user space for good
  }
  return true;
}

}  // namespace umbra::runtime
