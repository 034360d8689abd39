#include "runtime/supervisor/cpu_time.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <string>

namespace umbra::runtime {

namespace {

// "<run ns> <wait ns> <timeslices>\n"
bool ReadSchedstat(int task_dir, const char* tid, CpuSample& sum) {
  const std::string path = std::string(tid) + "/schedstat";
  UniqueFd fd(::openat(task_dir, path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  char buf[96];
  const ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
  if (n <= 0) return false;
  buf[n] = '\0';
  int64_t run = 0, wait = 0;
  if (std::sscanf(buf, "%" SCNd64 " %" SCNd64, &run, &wait) != 2) return false;
  sum.run_ns += run;
  sum.wait_ns += wait;
  ++sum.threads;
  return true;
}

}  // namespace

CpuTime::CpuTime(pid_t pid)
    : task_dir_(::open(("/proc/" + std::to_string(pid) + "/task").c_str(),
                       O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {}

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
    (void)ReadSchedstat(task_dir_.get(), e->d_name, sum);  // a thread that just left
  }
  ::closedir(dir);
  if (sum.threads == 0) return std::nullopt;
  return sum;
}

OwnTime::OwnTime(pid_t pid, int64_t now_ns) : cpu_(pid), last_wall_ns_(now_ns) {
  if (auto s = cpu_.Read()) last_wait_ns_ = s->wait_ns;
}

int64_t OwnTime::Advance(int64_t now_ns) {
  const int64_t wall = std::max<int64_t>(0, now_ns - last_wall_ns_);
  last_wall_ns_ = now_ns;
  int64_t waited = 0;
  if (auto s = cpu_.Read()) {
    // Clamped: threads that exit take their history with them, new ones
    // bring theirs, and two threads can wait at the same time.
    waited = std::clamp<int64_t>(s->wait_ns - last_wait_ns_, 0, wall);
    last_wait_ns_ = s->wait_ns;
  }
  waited_ns_ += waited;
  own_ns_ += wall - waited;
  return own_ns_;
}

}  // namespace umbra::runtime
