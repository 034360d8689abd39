// Real TCP through two isolated NIC drivers while they crash.
//
//   ns A: client ── tapA ─ TapBackend ─ Nic A ─ driver A ─ NetShadow A ─┐
//                                                                       │ bridge thread
//   ns B: server ── tapB ─ TapBackend ─ Nic B ─ driver B ─ NetShadow B ─┘ (this process)
//
// Each emulated NIC's TAP interface lives in a network namespace the test
// creates; the host forwards frames between the two net::Interfaces (both in
// promiscuous mode, as a bridge is). A client socket in ns A sends a stream to
// a server socket in ns B (threads moved into the namespaces with setns) while
// the drivers are killed by SIGSEGV, SIGABRT, SIGKILL and SIGSTOP (a hang) in
// turn; the server's byte count and FNV-1a checksum must equal the sender's.
//
// Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), /dev/net/tun and iproute2's
// `ip`; skips with a message saying which is missing.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/unique_fd.h"
#include "runtime/hw/nic/tap_backend.h"
#include "shadows/net/workloads/file_transfer.h"
#include "tests/shadows/net/net_rig.h"

namespace umbra::net {
namespace {

using namespace testing;

constexpr size_t kStreamBytes = 50u << 20;
constexpr uint16_t kPort = 5201;
constexpr const char* kServerAddress = "10.77.0.2";

// A network namespace made with `ip netns add`, deleted when this goes.
class Netns {
 public:
  explicit Netns(std::string name) : name_(std::move(name)) {
    made_ = std::system(("ip netns add " + name_ + " 2>/dev/null").c_str()) == 0;
  }
  ~Netns() {
    if (made_) (void)std::system(("ip netns del " + name_ + " 2>/dev/null").c_str());
  }
  bool made() const { return made_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool made_ = false;
};

// Moves the calling thread into the namespace (sockets it creates live there).
bool EnterNetns(const std::string& name) {
  UniqueFd fd(open(("/var/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC));
  return fd && setns(fd.get(), CLONE_NEWNET) == 0;
}

// The bytes of the stream, generated rather than stored.
void FillStream(std::span<std::byte> out, uint64_t& state) {
  for (auto& b : out) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    b = std::byte(state >> 56);
  }
}

// One side: a NIC on a TAP interface in a namespace, its driver process, the shadow.
struct Side {
  std::unique_ptr<hw::nic::Nic> nic;
  runtime::DriverHost* host = nullptr;
  std::unique_ptr<NetShadow> shadow;
};

// Both sides under one supervisor; torn down in a safe order: the shadows
// (they stop the drivers), the supervisor, the NICs last.
struct TapRig {
  runtime::Supervisor sup;
  Side a, b;

  // Returns an empty string when built, or what failed.
  std::string BuildSide(Side& side, const std::string& tap_name, const std::string& netns, const std::string& address,
                        uint64_t mac, const char* device_name) {
    auto tap =
        hw::nic::TapBackend::Create({.name = tap_name, .netns = netns, .ipv4_address = address, .prefix_length = 24});
    if (!tap) return tap.error().ToString();
    auto nic = hw::nic::Nic::Create({.name = device_name, .permanent_mac = mac}, std::move(*tap));
    if (!nic) return "nic: " + nic.error().ToString();
    side.nic = std::move(*nic);
    side.nic->Start();
    auto host = sup.AddDevice(NicHostOptions(side.nic.get(), device_name));
    if (!host) return "host: " + host.error().ToString();
    side.host = *host;
    auto shadow = NetShadow::Create(*side.host, {.rx_buffers = 128});
    if (!shadow) return "shadow: " + shadow.error().ToString();
    side.shadow = std::move(*shadow);
    if (auto r = side.shadow->Open(10 * kSec); !r) return "open: " + r.error().ToString();
    if (auto r = side.shadow->SetRxMode({.promiscuous = true}); !r) return "rx mode: " + r.error().ToString();
    if (auto r = side.shadow->Up(); !r) return "up: " + r.error().ToString();
    return "";
  }

  ~TapRig() {
    for (Side* s : {&a, &b}) {
      if (s->shadow) s->shadow->Stop();
      s->shadow.reset();
    }
    sup.Stop();
    for (Side* s : {&a, &b}) {
      if (s->nic) s->nic->Stop();
    }
  }
};

// Forwards frames both ways between two interfaces from one thread (each
// interface's Transmit and Receive stay on this thread, as net::Interface
// asks). Counts frames forwarded and errors.
class Bridge {
 public:
  Bridge(Interface& a, Interface& b) : a_(a), b_(b) {}
  ~Bridge() { Stop(); }
  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  uint64_t forwarded() const { return forwarded_.load(); }
  uint64_t errors() const { return errors_.load(); }
  std::string last_error() const {
    std::lock_guard lock(mu_);
    return last_error_;
  }

 private:
  void Run() {
    bool idle = false;
    while (!stop_) {
      // When both sides were quiet, wait on each for a short while.
      const size_t ab = Forward(a_, b_, idle ? 200'000 : 0);
      const size_t ba = Forward(b_, a_, idle ? 200'000 : 0);
      idle = ab == 0 && ba == 0;
    }
  }

  size_t Forward(Interface& from, Interface& to, int64_t wait_ns) {
    auto got = from.Receive(frames_, wait_ns);
    if (!got) return Failed(got.error());
    size_t done = 0;
    for (int tries = 0; done < *got && tries < 100; ++tries) {
      auto sent = to.Transmit({frames_.data() + done, *got - done});
      if (!sent) return Failed(sent.error());
      done += *sent;
    }
    forwarded_ += done;
    return *got;
  }

  size_t Failed(const Error& e) {
    ++errors_;
    std::lock_guard lock(mu_);
    last_error_ = e.ToString();
    return 0;
  }

  Interface& a_;  // the test's shadows; outlive the bridge
  Interface& b_;
  std::array<FrameView, 64> frames_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> forwarded_{0}, errors_{0};
  mutable std::mutex mu_;
  std::string last_error_;
  std::thread thread_;
};

struct StreamResult {
  uint64_t bytes = 0;
  uint64_t checksum = 0;
  std::string error;
};

sockaddr_in ServerAddress() {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(kPort);
  inet_pton(AF_INET, kServerAddress, &addr.sin_addr);
  return addr;
}

// ns B: accepts one connection and reads it to the end.
void Serve(const std::string& netns, std::atomic<bool>& listening, int64_t deadline, StreamResult& out) {
  if (!EnterNetns(netns)) {
    out.error = "setns into " + netns + ": " + std::strerror(errno);
    listening = true;
    return;
  }
  UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const sockaddr_in addr = ServerAddress();
  if (bind(listener.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener.get(), 1) != 0) {
    out.error = std::string("bind/listen: ") + std::strerror(errno);
    listening = true;
    return;
  }
  listening = true;
  pollfd pfd{listener.get(), POLLIN, 0};
  if (poll(&pfd, 1, 20'000) != 1) {
    out.error = "no connection came";
    return;
  }
  UniqueFd conn(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn) {
    out.error = std::string("accept: ") + std::strerror(errno);
    return;
  }
  std::vector<std::byte> buf(256 << 10);
  out.checksum = 0xcbf29ce484222325ull;
  pfd = {conn.get(), POLLIN, 0};
  while (MonotonicNanos() < deadline) {
    if (poll(&pfd, 1, 500) < 0 && errno != EINTR) break;
    const ssize_t n = recv(conn.get(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n == 0) return;  // the client closed: done
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      out.error = std::string("recv: ") + std::strerror(errno);
      return;
    }
    out.bytes += static_cast<uint64_t>(n);
    out.checksum = workloads::Fnv1a({buf.data(), static_cast<size_t>(n)}, out.checksum);
  }
  out.error = "the stream did not end in time";
}

// ns A: connects, sends kStreamBytes, closes, and waits for the server's close.
// Set once the driver kills are done: the sender holds back its last chunk
// until then, so that a fast machine cannot finish the stream before the
// faults it is meant to survive.
std::atomic<bool> g_kills_done{false};

void Send(const std::string& netns, int64_t deadline, StreamResult& out) {
  if (!EnterNetns(netns)) {
    out.error = "setns into " + netns + ": " + std::strerror(errno);
    return;
  }
  const sockaddr_in addr = ServerAddress();
  UniqueFd sock;
  while (MonotonicNanos() < deadline) {
    sock = UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (connect(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) break;
    sock = UniqueFd();
    usleep(50'000);
  }
  if (!sock) {
    out.error = "could not connect";
    return;
  }
  timeval tv{.tv_sec = 1, .tv_usec = 0};
  setsockopt(sock.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::vector<std::byte> buf(64 << 10);
  uint64_t state = 1;
  out.checksum = 0xcbf29ce484222325ull;
  while (out.bytes < kStreamBytes) {
    if (kStreamBytes - out.bytes <= buf.size()) {
      while (!g_kills_done && MonotonicNanos() < deadline) usleep(1000);
    }
    const size_t n = std::min<size_t>(buf.size(), kStreamBytes - out.bytes);
    FillStream({buf.data(), n}, state);
    out.checksum = workloads::Fnv1a({buf.data(), n}, out.checksum);
    size_t off = 0;
    while (off < n) {
      if (MonotonicNanos() > deadline) {
        out.error = "send timed out after " + std::to_string(out.bytes + off) + " bytes";
        return;
      }
      const ssize_t w = send(sock.get(), buf.data() + off, n - off, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        out.error = std::string("send: ") + std::strerror(errno);
        return;
      }
      off += static_cast<size_t>(w);
    }
    out.bytes += n;
  }
  shutdown(sock.get(), SHUT_WR);
  pollfd pfd{sock.get(), POLLIN, 0};
  while (MonotonicNanos() < deadline) {
    if (poll(&pfd, 1, 500) < 0 && errno != EINTR) break;
    char c;
    if (recv(sock.get(), &c, 1, MSG_DONTWAIT) == 0) return;
  }
  out.error = "the server did not close";
}

TEST(NetTapTcpTest, FiftyMebibytesOfTcpSurviveRepeatedDriverCrashesOnBothSides) {
  if (access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no access to /dev/net/tun";
  const std::string tag = std::to_string(getpid());
  Netns ns_a("umbra-t" + tag + "-a"), ns_b("umbra-t" + tag + "-b");
  if (!ns_a.made() || !ns_b.made()) {
    GTEST_SKIP() << "cannot create network namespaces (`ip netns add` needs root and iproute2)";
  }
  TapRig rig;
  std::string why = rig.BuildSide(rig.a, "ut" + tag + "a", ns_a.name(), "10.77.0.1", 0x0A0000000002, "nicA");
  if (why.empty()) {
    why = rig.BuildSide(rig.b, "ut" + tag + "b", ns_b.name(), kServerAddress, 0x0B0000000002, "nicB");
  }
  if (why.find("tap:") != std::string::npos) GTEST_SKIP() << "cannot create TAP devices: " << why;
  ASSERT_EQ(why, "");
  Side& a = rig.a;
  Side& b = rig.b;

  Bridge bridge(*a.shadow, *b.shadow);
  bridge.Start();
  const int64_t start = MonotonicNanos();
  const int64_t deadline = start + 45 * kSec;
  StreamResult server, client;
  std::atomic<bool> listening{false};
  std::thread server_thread([&] { Serve(ns_b.name(), listening, deadline, server); });
  while (!listening) usleep(1000);
  std::atomic<bool> done{false};
  std::thread client_thread([&] {
    Send(ns_a.name(), deadline, client);
    done = true;
  });

  // Kill the drivers in turn, 80-200 ms apart: each fault type twice on each
  // side, then let the stream finish (kills closer together than TCP's
  // retransmission timeout, for long, would stall it on a loaded machine).
  constexpr int kKills = 16;
  const int signals[] = {SIGSEGV, SIGABRT, SIGKILL, SIGSTOP};
  std::mt19937 rng(7);
  int kills = 0;
  g_kills_done = false;
  while (!done && kills < kKills) {
    usleep(std::uniform_int_distribution<int>(80'000, 200'000)(rng));
    if (done) break;
    Side& victim = kills % 2 == 0 ? a : b;
    const size_t before = victim.shadow->recoveries().size();
    victim.host->Kill(signals[(kills / 2) % 4]);
    while (victim.shadow->recoveries().size() == before && MonotonicNanos() < deadline) usleep(200);
    auto passive = victim.shadow->WaitUntilPassive(10 * kSec);
    EXPECT_TRUE(passive.has_value()) << passive.error().ToString();
    if (!passive) break;
    ++kills;
  }
  g_kills_done = true;
  client_thread.join();
  server_thread.join();
  bridge.Stop();
  const double seconds = static_cast<double>(MonotonicNanos() - start) / 1e9;
  std::printf("[tap-tcp] %zu bytes in %.1f s (%.1f MB/s) across %d driver kills; %lu frames bridged\n", kStreamBytes,
              seconds, static_cast<double>(kStreamBytes) / seconds / 1e6, kills,
              static_cast<unsigned long>(bridge.forwarded()));

  ASSERT_EQ(client.error, "");
  ASSERT_EQ(server.error, "");
  EXPECT_EQ(client.bytes, kStreamBytes);
  EXPECT_EQ(server.bytes, kStreamBytes);
  EXPECT_EQ(server.checksum, client.checksum);
  EXPECT_EQ(bridge.errors(), 0u) << bridge.last_error();
  EXPECT_GE(kills, 8) << "every fault type hit each side at least once";
  for (Side* s : {&a, &b}) {
    for (const auto& r : s->shadow->recoveries()) EXPECT_TRUE(r.succeeded) << r.failure;
  }
}

}  // namespace
}  // namespace umbra::net
