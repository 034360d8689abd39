#include "runtime/hw/nic/tap_backend.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "runtime/hw/nic/nic_regs.h"

extern char** environ;

namespace umbra::hw::nic {
namespace {

constexpr size_t kReadBatch = 32;
constexpr size_t kReadBufferSize = 65536;  // a TAP frame is at most the interface MTU + 14

// Runs `ip <args>` and waits for it; used only for namespace set-up.
Result<void> RunIp(std::vector<std::string> args) {
  args.insert(args.begin(), "ip");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  if (int err = posix_spawnp(&pid, "ip", nullptr, nullptr, argv.data(), environ); err != 0) {
    return FailErrno("spawn ip", err);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return FailErrno("waitpid ip");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (auto& a : args) cmd += a + " ";
    return Fail(Errc::kIo, "command failed: " + cmd);
  }
  return {};
}

Result<void> Ioctl(int sock, unsigned long request, ifreq& ifr, const char* what) {
  if (ioctl(sock, request, &ifr) != 0) return FailErrno(std::string(what) + " " + ifr.ifr_name);
  return {};
}

sockaddr_in Ipv4(in_addr_t addr) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = addr;
  return sin;
}

// Address, MTU and IFF_UP in the current namespace, through ioctls.
Result<void> ConfigureHere(const TapOptions& o) {
  UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return FailErrno("socket");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, o.name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_mtu = static_cast<int>(o.mtu);
  UMBRA_TRY(Ioctl(sock.get(), SIOCSIFMTU, ifr, "set MTU of"));
  if (!o.ipv4_address.empty()) {
    in_addr addr;
    if (inet_pton(AF_INET, o.ipv4_address.c_str(), &addr) != 1) {
      return Fail(Errc::kInvalidArgument, "tap: bad IPv4 address '" + o.ipv4_address + "'");
    }
    sockaddr_in sin = Ipv4(addr.s_addr);
    std::memcpy(&ifr.ifr_addr, &sin, sizeof sin);
    UMBRA_TRY(Ioctl(sock.get(), SIOCSIFADDR, ifr, "set address of"));
    const uint32_t mask = o.prefix_length == 0 ? 0 : ~uint32_t{0} << (32 - o.prefix_length);
    sin = Ipv4(htonl(mask));
    std::memcpy(&ifr.ifr_netmask, &sin, sizeof sin);
    UMBRA_TRY(Ioctl(sock.get(), SIOCSIFNETMASK, ifr, "set netmask of"));
  }
  UMBRA_TRY(Ioctl(sock.get(), SIOCGIFFLAGS, ifr, "get flags of"));
  ifr.ifr_flags |= IFF_UP;
  UMBRA_TRY(Ioctl(sock.get(), SIOCSIFFLAGS, ifr, "bring up"));
  return {};
}

// The same in another namespace, through `ip -n`.
Result<void> ConfigureInNamespace(const TapOptions& o) {
  UMBRA_TRY(RunIp({"link", "set", "dev", o.name, "netns", o.netns}));
  UMBRA_TRY(RunIp({"-n", o.netns, "link", "set", "dev", o.name, "mtu", std::to_string(o.mtu)}));
  if (!o.ipv4_address.empty()) {
    UMBRA_TRY(
        RunIp({"-n", o.netns, "addr", "add", o.ipv4_address + "/" + std::to_string(o.prefix_length), "dev", o.name}));
  }
  UMBRA_TRY(RunIp({"-n", o.netns, "link", "set", "dev", o.name, "up"}));
  return {};
}

}  // namespace

Result<std::unique_ptr<TapBackend>> TapBackend::Create(TapOptions options) {
  if (options.name.empty() || options.name.size() >= IFNAMSIZ) {
    return Fail(Errc::kInvalidArgument, "tap: interface name must be 1..15 characters");
  }
  if (options.prefix_length < 0 || options.prefix_length > 32 || options.mtu < kNicMinMtu || options.mtu > kNicMaxMtu) {
    return Fail(Errc::kInvalidArgument, "tap: prefix length or MTU out of range");
  }
  UniqueFd fd(open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    return Fail(Errc::kUnavailable, std::string("tap: cannot open /dev/net/tun: ") + std::strerror(errno));
  }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::strncpy(ifr.ifr_name, options.name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
    return Fail(Errc::kUnavailable,
                "tap: cannot create " + options.name + " (needs CAP_NET_ADMIN): " + std::strerror(errno));
  }
  if (options.netns.empty()) {
    UMBRA_TRY(ConfigureHere(options));
  } else {
    UMBRA_TRY(ConfigureInNamespace(options));
  }
  auto wake = UMBRA_TRY(ipc::EventFd::Create());
  std::unique_ptr<TapBackend> tap(new TapBackend(std::move(options), std::move(fd), std::move(wake)));
  tap->reader_ = std::thread([t = tap.get()] { t->ReadLoop(); });
  return tap;
}

TapBackend::~TapBackend() {
  wake_.Signal();
  if (reader_.joinable()) reader_.join();
}

void TapBackend::Attach(FrameSink* sink) {
  std::lock_guard lock(mu_);
  sink_ = sink;
}

void TapBackend::Transmit(std::span<const FrameView> frames) {
  for (FrameView f : frames) {
    // The TAP queue is non-blocking: a full queue drops, as a busy link would.
    if (::write(fd_.get(), f.data(), f.size()) != static_cast<ssize_t>(f.size())) {
      tx_dropped_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void TapBackend::ReadLoop() {
  std::vector<std::byte> buffers(kReadBatch * kReadBufferSize);
  std::array<FrameView, kReadBatch> frames;
  pollfd fds[2] = {{fd_.get(), POLLIN, 0}, {wake_.fd(), POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if ((fds[1].revents & POLLIN) != 0) return;
    size_t n = 0;
    bool gone = false;
    while (n < kReadBatch) {
      std::byte* buf = buffers.data() + n * kReadBufferSize;
      ssize_t got = ::read(fd_.get(), buf, kReadBufferSize);
      if (got > 0) {
        frames[n++] = FrameView(buf, static_cast<size_t>(got));
        continue;
      }
      // The interface was deleted under us (e.g. its namespace went away):
      // stop reading rather than spin on an fd that stays readable.
      gone = got == 0 || (errno != EAGAIN && errno != EINTR);
      break;
    }
    if (n == 0 && (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) gone = true;
    if (n > 0) Deliver(std::span<const FrameView>(frames.data(), n));
    if (gone) {
      interface_gone_.store(true, std::memory_order_relaxed);
      return;
    }
  }
}

void TapBackend::Deliver(std::span<const FrameView> frames) {
  rx_frames_.fetch_add(frames.size(), std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  if (sink_ != nullptr) sink_->DeliverFrames(frames);
}

}  // namespace umbra::hw::nic
