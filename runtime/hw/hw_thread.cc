#include "runtime/hw/hw_thread.h"

#include <pthread.h>
#include <sched.h>

namespace umbra::hw {

void HardwareThread::Start(const std::string& name, std::function<void()> run, int cpu) {
  if (thread_.joinable()) return;
  stop_.store(false, std::memory_order_release);
  thread_ = std::thread(std::move(run));
  // "<name>-hw" in top and gdb (the kernel keeps 15 characters).
  pthread_setname_np(thread_.native_handle(), (name + "-hw").substr(0, 15).c_str());
  if (clockid_t clock; pthread_getcpuclockid(thread_.native_handle(), &clock) == 0) cpu_clock_ = clock;
  if (cpu >= 0) {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(cpu, &cpus);
    (void)pthread_setaffinity_np(thread_.native_handle(), sizeof cpus, &cpus);  // a hint: runs anywhere if refused
  }
}

void HardwareThread::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  wake_.Signal();
  thread_.join();
  wake_.Drain();
  cpu_clock_.reset();
}

int64_t HardwareThread::cpu_ns() const {
  timespec ts{};
  if (!thread_.joinable() || !cpu_clock_ || clock_gettime(*cpu_clock_, &ts) != 0) return 0;
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

bool RaiseInterrupt(std::atomic<uint32_t>& cause, const std::atomic<uint32_t>& mask, MaskSense sense, uint32_t bits,
                    const ipc::EventFd& line) {
  const uint32_t before = cause.fetch_or(bits, std::memory_order_acq_rel);
  const uint32_t fresh = bits & ~before;
  if (fresh == 0) return false;  // still pending: suppressed
  const uint32_t m = mask.load(std::memory_order_acquire);
  uint32_t enabled = 0;
  switch (sense) {
    case MaskSense::kBitMasks: enabled = ~m; break;
    case MaskSense::kBitEnables: enabled = m; break;
  }
  if ((fresh & enabled) == 0) return false;
  line.Signal();
  return true;
}

}  // namespace umbra::hw
