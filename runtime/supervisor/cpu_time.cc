#include "runtime/supervisor/cpu_time.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

namespace umbra::runtime {

namespace {

// Reads /proc/<pid>/task/<tid>/<file> into `buf`; its length, or -1.
ssize_t ReadTaskFile(int task_dir, const char* tid, const char* file, char* buf, size_t size) {
  const std::string path = std::string(tid) + "/" + file;
  UniqueFd fd(::openat(task_dir, path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return -1;
  const ssize_t n = ::pread(fd.get(), buf, size - 1, 0);
  if (n <= 0) return -1;
  buf[n] = '\0';
  return n;
}

// schedstat: "<run ns> <wait ns> <timeslices>\n"; stat: "<tid> (<comm>) <state> ...".
bool ReadThread(int task_dir, const char* tid, CpuSample& sum) {
  char buf[512];
  if (ReadTaskFile(task_dir, tid, "schedstat", buf, sizeof buf) < 0) return false;
  int64_t run = 0, wait = 0;
  if (std::sscanf(buf, "%" SCNd64 " %" SCNd64, &run, &wait) != 2) return false;
  sum.run_ns += run;
  sum.wait_ns += wait;
  ++sum.threads;
  if (ReadTaskFile(task_dir, tid, "stat", buf, sizeof buf) < 0) return true;
  const char* close = std::strrchr(buf, ')');
  if (close != nullptr && close[1] == ' ' && close[2] == 'R') sum.runnable = true;
  return true;
}

}  // namespace

CpuTime::CpuTime(pid_t pid)
    : task_dir_(::open(("/proc/" + std::to_string(pid) + "/task").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {}

std::optional<CpuSample> CpuTime::Read() const {
  if (!task_dir_) return std::nullopt;
  // A DIR of its own each time: the listing must be current (threads come
  // and go), and the directory descriptor stays ours.
  const int dup = ::openat(task_dir_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup < 0) return std::nullopt;
  DIR* dir = ::fdopendir(dup);
  if (dir == nullptr) {
    ::close(dup);
    return std::nullopt;
  }
  CpuSample sum;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    (void)ReadThread(task_dir_.get(), e->d_name, sum);  // false: a thread that just left
  }
  ::closedir(dir);
  if (sum.threads == 0) return std::nullopt;
  return sum;
}

OwnTime::OwnTime(pid_t pid, int64_t now_ns) : cpu_(pid), last_wall_ns_(now_ns) {
  if (auto s = cpu_.Read()) {
    last_run_ns_ = s->run_ns;
    last_wait_ns_ = s->wait_ns;
  }
}

int64_t OwnTime::Advance(int64_t now_ns, Heard heard) {
  const int64_t wall = std::max<int64_t>(0, now_ns - last_wall_ns_);
  last_wall_ns_ = now_ns;
  int64_t own = wall;
  if (auto s = cpu_.Read()) {
    // Clamped: threads that exit take their history with them, new ones
    // bring theirs, and two threads can run or wait at the same time.
    const int64_t ran = std::clamp<int64_t>(s->run_ns - last_run_ns_, 0, wall);
    const int64_t waited = std::clamp<int64_t>(s->wait_ns - last_wait_ns_, 0, wall);
    last_run_ns_ = s->run_ns;
    last_wait_ns_ = s->wait_ns;
    // The kernel adds a wait to schedstat only when the thread gets its
    // CPU: a thread waiting now shows none of it yet. So while a thread is
    // runnable and the driver has not just run, only the CPU the process got
    // counts; otherwise the interval less the waits that ended in it.
    const bool may_be_waiting = s->runnable && heard == Heard::kNotLately;
    own = may_be_waiting ? ran : wall - waited;
  }
  waited_ns_ += wall - own;
  own_ns_ += own;
  return own_ns_;
}

}  // namespace umbra::runtime
