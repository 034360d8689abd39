#include "runtime/sandbox/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include <spdlog/spdlog.h>

namespace umbra::sandbox {
namespace {

// Where a hierarchy is mounted and where the host sits in it.
struct Hierarchy {
  std::string mount;  // "/sys/fs/cgroup/pids"
  std::string own;    // the host's group, relative to the mount: "/" or "/a/b"
  bool found() const { return !mount.empty(); }
  std::string HostDir() const { return own == "/" ? mount : mount + own; }
};

struct Hierarchies {
  Hierarchy v2, pids, memory, cpuacct;
};

bool HasWord(const std::string& list, const std::string& word) {
  std::stringstream ss(list);
  std::string w;
  while (std::getline(ss, w, ',')) {
    if (w == word) return true;
  }
  return false;
}

// The host's group in each hierarchy, from /proc/self/cgroup.
void ReadOwnGroups(Hierarchies& h, std::vector<std::pair<std::string, std::string>>& v1) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    if (line.compare(0, a, "0") == 0 && controllers.empty()) {
      h.v2.own = path;
    } else {
      v1.emplace_back(controllers, path);
    }
  }
}

// Mount points, from /proc/self/mountinfo: "... root mountpoint ... - fstype source options".
Hierarchies Discover() {
  Hierarchies h;
  std::vector<std::pair<std::string, std::string>> v1_own;
  ReadOwnGroups(h, v1_own);
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string id, parent, dev, root, mountpoint, field;
    ss >> id >> parent >> dev >> root >> mountpoint;
    while (ss >> field && field != "-") {}
    std::string fstype, source, options;
    ss >> fstype >> source >> options;
    auto relative = [&](const std::string& own) {
      if (root == "/" || own.rfind(root, 0) != 0) return own;
      const std::string rest = own.substr(root.size());
      return rest.empty() ? std::string("/") : rest;
    };
    if (fstype == "cgroup2" && !h.v2.found()) {
      h.v2.mount = mountpoint;
      h.v2.own = relative(h.v2.own.empty() ? "/" : h.v2.own);
      continue;
    }
    if (fstype != "cgroup") continue;
    for (const auto& [controllers, own] : v1_own) {
      const std::pair<const char*, Hierarchy*> wanted[] = {
          {"pids", &h.pids}, {"memory", &h.memory}, {"cpuacct", &h.cpuacct}};
      for (auto [name, target] : wanted) {
        if (HasWord(controllers, name) && HasWord(options, name) && !target->found()) {
          target->mount = mountpoint;
          target->own = relative(own);
        }
      }
    }
  }
  return h;
}

const Hierarchies& Found() {
  static const Hierarchies h = Discover();
  return h;
}

bool WriteFile(const std::string& path, const std::string& value) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  close(fd);
  return ok;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// Says once per kind what the sandbox goes without on this machine.
void WarnOnce(const char* what) {
  static std::mutex mu;
  static std::vector<std::string> said;
  std::lock_guard lock(mu);
  for (const auto& s : said) {
    if (s == what) return;
  }
  said.emplace_back(what);
  spdlog::warn("driver sandbox: {}", what);
}

// Removes the empty groups a host that died (SIGKILL, a crash) left beside
// its own: "umbra-<pid>-..." whose pid is gone. A group still holding a
// process is left alone (rmdir refuses it).
void SweepDeadHosts(const Hierarchy& h) {
  if (!h.found()) return;
  const std::string parent = h.HostDir();
  DIR* dir = opendir(parent.c_str());
  if (dir == nullptr) return;
  while (dirent* e = readdir(dir)) {
    int pid = 0;
    if (std::sscanf(e->d_name, "umbra-%d-", &pid) != 1 || pid <= 0) continue;
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    rmdir((parent + "/" + e->d_name).c_str());
  }
  closedir(dir);
}

// A new group `name` under the host's group in `h`; empty when it cannot be made.
std::string MakeGroup(const Hierarchy& h, const std::string& name) {
  if (!h.found()) return {};
  const std::string dir = h.HostDir() + "/" + name;
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return {};
  return dir;
}

}  // namespace

std::unique_ptr<InstanceCgroup> InstanceCgroup::Create(const std::string& name, const SandboxLimits& limits) {
  const Hierarchies& h = Found();
  const std::string group = "umbra-" + std::to_string(getpid()) + "-" + name;
  std::unique_ptr<InstanceCgroup> g(new InstanceCgroup());
  for (const Hierarchy* each : {&h.v2, &h.memory, &h.cpuacct}) SweepDeadHosts(*each);
  bool memory_done = false;
  if (std::string dir = MakeGroup(h.v2, group); !dir.empty()) {
    g->dirs_.push_back(dir);
    g->v2_dir_ = dir;
    g->v2_fd_ = UniqueFd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    g->procs_fd_ = UniqueFd(open((dir + "/cgroup.procs").c_str(), O_RDONLY | O_CLOEXEC));
    // Where v2 has the controllers, its limits come at no cost at spawn.
    if (limits.processes > 0 && Exists(dir + "/pids.max"))
      WriteFile(dir + "/pids.max", std::to_string(limits.processes));
    if (limits.memory_bytes > 0 && Exists(dir + "/memory.max")) {
      memory_done = WriteFile(dir + "/memory.max", std::to_string(limits.memory_bytes));
    }
    if (!Exists(dir + "/cgroup.kill")) WarnOnce("cgroup v2 has no cgroup.kill: a group is killed pid by pid");
  } else {
    WarnOnce("no writable cgroup v2 hierarchy: instances are killed through their PID namespace only");
  }
  // v1 memory: joining costs the spawn a migration (an RCU grace period,
  // milliseconds), so only when the limit was asked for.
  if (limits.memory_bytes > 0 && !memory_done && limits.memory_limit == MemoryLimit::kAlways) {
    std::string dir = MakeGroup(h.memory, group);
    if (!dir.empty() && WriteFile(dir + "/memory.limit_in_bytes", std::to_string(limits.memory_bytes))) {
      g->dirs_.push_back(dir);
      g->procs_files_.push_back(dir + "/cgroup.procs");
      memory_done = true;
    } else if (!dir.empty()) {
      rmdir(dir.c_str());
    }
  }
  if (limits.memory_bytes > 0 && !memory_done) {
    WarnOnce(limits.memory_limit == MemoryLimit::kAlways
                 ? "no writable memory controller: the memory limit is not enforced"
                 : "cgroup v2 has no memory controller here: the default memory limit is not enforced "
                   "(a driver's memory_mb setting enforces it through cgroup v1)");
  }
  if (g->v2_dir_.empty()) {
    if (std::string dir = MakeGroup(h.cpuacct, group); !dir.empty()) {
      g->dirs_.push_back(dir);
      g->procs_files_.push_back(dir + "/cgroup.procs");
      g->cpuacct_dir_ = dir;
    }
  }
  if (g->dirs_.empty()) return nullptr;
  return g;
}

InstanceCgroup::~InstanceCgroup() {
  Kill();
  for (const auto& dir : dirs_) {
    // The processes are gone once the instance is reaped (its PID namespace
    // went with it); a group still busy for a moment is tried again once.
    if (rmdir(dir.c_str()) != 0 && errno == EBUSY) {
      usleep(1000);
      if (rmdir(dir.c_str()) != 0) spdlog::debug("driver sandbox: cannot remove {}: {}", dir, strerror(errno));
    }
  }
}

void InstanceCgroup::Kill() {
  if (!v2_dir_.empty() && WriteFile(v2_dir_ + "/cgroup.kill", "1")) return;
  std::vector<std::string> all = procs_files_;
  if (!v2_dir_.empty()) all.push_back(v2_dir_ + "/cgroup.procs");
  for (const auto& procs : all) {
    std::istringstream ss(ReadFile(procs));
    pid_t pid = 0;
    while (ss >> pid) {
      if (pid > 0) kill(pid, SIGKILL);
    }
  }
}

std::optional<int64_t> InstanceCgroup::CpuNanos() const {
  if (!v2_dir_.empty()) {
    std::istringstream ss(ReadFile(v2_dir_ + "/cpu.stat"));
    std::string key;
    int64_t value = 0;
    while (ss >> key >> value) {
      if (key == "usage_usec") return value * 1000;
    }
  }
  if (!cpuacct_dir_.empty()) {
    std::istringstream ss(ReadFile(cpuacct_dir_ + "/cpuacct.usage"));
    int64_t ns = 0;
    if (ss >> ns) return ns;
  }
  return std::nullopt;
}

size_t InstanceCgroup::ProcessCount() const {
  std::string text;
  if (procs_fd_) {
    char buf[4096];
    const ssize_t n = pread(procs_fd_.get(), buf, sizeof buf, 0);
    if (n > 0) text.assign(buf, static_cast<size_t>(n));
  } else if (!dirs_.empty()) {
    text = ReadFile(dirs_.front() + "/cgroup.procs");
  }
  std::istringstream ss(text);
  size_t n = 0;
  pid_t pid = 0;
  while (ss >> pid) ++n;
  return n;
}

}  // namespace umbra::sandbox
