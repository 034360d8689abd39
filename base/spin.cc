#include "base/spin.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include "base/clock.h"

namespace umbra {
namespace {

struct LoadAvg {
  int fd = -1;
  int cpus = 1;
  LoadAvg() {
    fd = ::open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online > 0 && online < cpus) cpus = static_cast<int>(online);
    if (cpus < 1) cpus = 1;
  }
};

}  // namespace

bool CpusContended() {
  static const LoadAvg load;  // opened once, shared by every thread (pread is)
  if (load.fd < 0) return false;
  // "0.52 0.58 0.59 3/412 12345": the fourth field is runnable/total.
  char buf[128];
  const ssize_t n = ::pread(load.fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return false;
  int field = 0;
  ssize_t i = 0;
  for (; i < n && field < 3; ++i) {
    if (buf[i] == ' ') ++field;
  }
  int running = 0;
  for (; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) running = running * 10 + (buf[i] - '0');
  return running > load.cpus;
}

bool Spin::Again() {
  if (gave_up_) return false;
  const int64_t now = MonotonicNanos();
  if (start_ns_ == 0) {
    start_ns_ = now;
    next_check_ns_ = now + kContentionCheckNs;
  }
  if (now - start_ns_ >= budget_ns_ || (policy_ == kGiveWay && now >= next_check_ns_ && CpusContended())) {
    gave_up_ = true;
    return false;
  }
  if (now >= next_check_ns_) {
    // Threads queued for this CPU run first; alone on it, this returns at once.
    if (policy_ == kTakeTurns) sched_yield();
    next_check_ns_ = MonotonicNanos() + kContentionCheckNs;
  }
  for (int i = 0; i < 32; ++i) CpuRelax();
  return true;
}

}  // namespace umbra
