// A hostile driver, for the sandbox's tests: a working echo device that, when
// called with method kAttack, tries one attack on the host, its neighbours or
// the machine, and answers with what happened ("blocked: <why>" or
// "succeeded: <what>"). An attack the seccomp filter refuses never answers:
// the driver dies of SIGSYS and the host reports the system call.
//
// The body of the call is "<attack> <number>", the number being a pid or a
// size the test hands over (an attacker could find or guess it).
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "drivers/echo/echo_driver.h"

namespace {

using umbra::Result;
using umbra::sdk::Context;

constexpr uint32_t kAttack = 100;

std::string Blocked(const char* what) { return std::string("blocked: ") + what + ": " + std::strerror(errno); }

std::string OpenFile(const std::string& path, int flags) {
  const int fd = open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) return Blocked(path.c_str());
  close(fd);
  return "succeeded: opened " + path;
}

// Forks until the process limit says no; the children sleep until the
// instance is killed. Returns how many it got.
std::string ForkBomb(long limit) {
  long n = 0;
  for (; n < limit; ++n) {
    const pid_t pid = fork();
    if (pid < 0) return "blocked: fork failed after " + std::to_string(n) + ": " + std::strerror(errno);
    if (pid == 0) {
      for (;;) pause();
    }
  }
  return "succeeded: " + std::to_string(n) + " processes";
}

std::string FdBomb(long limit) {
  long n = 0;
  for (; n < limit; ++n) {
    if (open("/dev/null", O_RDONLY) < 0) {
      return "blocked: open failed after " + std::to_string(n) + ": " + std::strerror(errno);
    }
  }
  return "succeeded: " + std::to_string(n) + " descriptors";
}

// Touches `limit` bytes; the memory limit ends it (the kernel kills it).
std::string MemoryBomb(long limit) {
  constexpr size_t kChunk = 1 << 20;
  for (long done = 0; done < limit; done += kChunk) {
    void* p = mmap(nullptr, kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return Blocked("mmap");
    std::memset(p, 0x5a, kChunk);
  }
  return "succeeded: touched " + std::to_string(limit) + " bytes";
}

// A child that leaves the process group (so that a signal to the group
// misses it) and keeps scribbling over the whole buffer pool, then a crash of
// the driver: the child must not outlive it (nor write into its successor).
std::string LeftoverScribbler(Context& ctx) {
  const pid_t pid = fork();
  if (pid < 0) return Blocked("fork");
  if (pid == 0) {
    (void)setsid();
    std::byte* pool = ctx.pool();
    const uint64_t size = ctx.pool_size();
    for (;;) {
      for (uint64_t i = 0; i < size; ++i) pool[i] = std::byte{0xEE};
    }
  }
  usleep(10'000);
  std::abort();
}

using Attack = std::function<std::string(Context&, long)>;

const std::map<std::string, Attack>& Attacks() {
  static const std::map<std::string, Attack> attacks = {
      {"kill",
       [](Context&, long pid) {
         return kill(static_cast<pid_t>(pid), SIGKILL) == 0 ? std::string("succeeded") : Blocked("kill");
       }},
      {"stop",
       [](Context&, long pid) {
         return kill(static_cast<pid_t>(pid), SIGSTOP) == 0 ? std::string("succeeded") : Blocked("kill");
       }},
      {"pidfd-signal",
       [](Context&, long pid) {
         const long fd = syscall(SYS_pidfd_open, pid, 0);
         if (fd < 0) return Blocked("pidfd_open");
         return syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0) == 0 ? std::string("succeeded")
                                                                             : Blocked("pidfd_send_signal");
       }},
      {"proc-mem", [](Context&, long pid) { return OpenFile("/proc/" + std::to_string(pid) + "/mem", O_RDWR); }},
      {"proc-environ",
       [](Context&, long pid) { return OpenFile("/proc/" + std::to_string(pid) + "/environ", O_RDONLY); }},
      {"proc-fd", [](Context&, long pid) { return OpenFile("/proc/" + std::to_string(pid) + "/fd/0", O_RDWR); }},
      {"process-vm-readv",
       [](Context&, long pid) {
         char buf[64];
         iovec local{buf, sizeof buf}, remote{reinterpret_cast<void*>(0x400000), sizeof buf};
         return process_vm_readv(static_cast<pid_t>(pid), &local, 1, &remote, 1, 0) > 0 ? std::string("succeeded")
                                                                                        : Blocked("process_vm_readv");
       }},
      {"ptrace",
       [](Context&, long pid) {
         return ptrace(PTRACE_ATTACH, static_cast<pid_t>(pid), nullptr, nullptr) == 0 ? std::string("succeeded")
                                                                                      : Blocked("ptrace");
       }},
      {"read-shadow", [](Context&, long) { return OpenFile("/etc/shadow", O_RDONLY); }},
      {"create-file", [](Context&, long) { return OpenFile("/umbra-hostile-was-here", O_WRONLY | O_CREAT); }},
      {"create-tmp-file", [](Context&, long) { return OpenFile("/tmp/scratch", O_WRONLY | O_CREAT); }},
      {"setsid", [](Context&, long) { return setsid() >= 0 ? std::string("succeeded") : Blocked("setsid"); }},
      {"setpgid", [](Context&, long) { return setpgid(0, 0) == 0 ? std::string("succeeded") : Blocked("setpgid"); }},
      {"mount",
       [](Context&, long) {
         return mount("none", "/tmp", "tmpfs", 0, nullptr) == 0 ? std::string("succeeded") : Blocked("mount");
       }},
      {"socket",
       [](Context&, long) {
         const int s = socket(AF_INET, SOCK_STREAM, 0);
         if (s < 0) return Blocked("socket");
         close(s);
         return std::string("succeeded: a socket");
       }},
      {"fork-bomb", [](Context&, long limit) { return ForkBomb(limit); }},
      {"fd-bomb", [](Context&, long limit) { return FdBomb(limit); }},
      {"memory-bomb", [](Context&, long limit) { return MemoryBomb(limit); }},
      {"leftover-scribbler", [](Context& ctx, long) { return LeftoverScribbler(ctx); }},
      // A helper thread spins for ever while the SDK's loop keeps heartbeating.
      {"spin",
       [](Context&, long) {
         std::thread([] {
           volatile bool forever = true;
           while (forever) {}
         }).detach();
         return std::string("succeeded: spinning");
       }},
      {"log-flood",
       [](Context& ctx, long n) {
         for (long i = 0; i < n; ++i) ctx.Log(umbra::sdk::LogLevel::kDebug, "flood");
         return "succeeded: " + std::to_string(n) + " log lines";
       }},
  };
  return attacks;
}

class HostileDriver : public umbra::drivers::EchoDriver {
 public:
  std::string_view name() const override { return "hostile"; }

  Result<std::string> OnCall(Context& ctx, uint32_t method, std::string_view body) override {
    if (method != kAttack) return EchoDriver::OnCall(ctx, method, body);
    const std::string text(body);
    const size_t space = text.find(' ');
    const std::string attack = text.substr(0, space);
    const long number = space == std::string::npos ? 0 : std::atol(text.c_str() + space + 1);
    auto it = Attacks().find(attack);
    if (it == Attacks().end()) return umbra::Fail(umbra::Errc::kInvalidArgument, "no attack " + attack);
    return it->second(ctx, number);
  }
};

}  // namespace

UMBRA_DRIVER_MAIN(HostileDriver)
