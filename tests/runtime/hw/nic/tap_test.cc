// The TAP backend: real frames between the Linux network stack and the NIC's
// rings. Needs root (CAP_NET_ADMIN) and /dev/net/tun; skips otherwise.
#include "runtime/hw/nic/tap_backend.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "runtime/hw/nic/nic.h"
#include "tests/runtime/hw/nic/test_driver.h"

namespace umbra::hw::nic {
namespace {

using testing::MakeFrame;
using testing::TestDriver;

constexpr uint64_t kNicMac = 0x010000000002;
constexpr uint16_t kTestEthertype = 0x88B5;  // IEEE local experimental

std::string Subnet() { return "10.213." + std::to_string(getpid() % 200) + "."; }
std::string TapName(const char* tag) { return std::string("umbt") + tag + std::to_string(getpid() % 100000); }

class TapTest : public ::testing::Test {
 protected:
  // Creates the TAP-backed NIC, or skips when the machine cannot.
  void Bring(TapOptions options) {
    auto tap = TapBackend::Create(options);
    if (!tap && tap.error().code == Errc::kUnavailable) {
      GTEST_SKIP() << "cannot create a TAP device (needs root and /dev/net/tun): " << tap.error().message;
    }
    ASSERT_TRUE(tap.has_value()) << tap.error().ToString();
    tap_ = tap->get();
    auto nic = Nic::Create({.name = "nic-tap", .permanent_mac = kNicMac}, std::move(*tap));
    ASSERT_TRUE(nic.has_value());
    nic_ = std::move(*nic);
    driver_ =
        std::make_unique<TestDriver>(nic_->registers(), nic_->dma(), nic_->doorbell().fd(), nic_->interrupt().fd());
    nic_->Start();
    ASSERT_TRUE(driver_->Open(kNicRxUnicast | kNicRxBroadcast));
  }

  // Waits for the ARP request Linux sends before its first packet to `ip`.
  bool SawArpRequestFor(const std::string& ip) {
    in_addr target;
    inet_pton(AF_INET, ip.c_str(), &target);
    for (int i = 0; i < 100; ++i) {
      auto f = driver_->ReceiveOne(3000);
      if (!f) return false;
      if (f->size() < 42 || (*f)[12] != std::byte{0x08} || (*f)[13] != std::byte{0x06}) continue;
      if (std::memcmp(f->data() + 38, &target, 4) == 0) return true;
    }
    return false;
  }

  static void SendUdp(const std::string& ip) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(s, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(9);
    inet_pton(AF_INET, ip.c_str(), &to.sin_addr);
    const char msg[] = "hello nic";
    EXPECT_EQ(sendto(s, msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
              static_cast<ssize_t>(sizeof msg));
    close(s);
  }

  TapBackend* tap_ = nullptr;  // owned by nic_
  std::unique_ptr<Nic> nic_;
  std::unique_ptr<TestDriver> driver_;
};

TEST_F(TapTest, LinuxTrafficArrivesInTheRxRing) {
  Bring({.name = TapName("r"), .ipv4_address = Subnet() + "1", .prefix_length = 24});
  if (IsSkipped()) return;
  SendUdp(Subnet() + "2");
  EXPECT_TRUE(SawArpRequestFor(Subnet() + "2"));
  EXPECT_GT(nic_->stats()[kNicStatRxFrames], 0u);
}

TEST_F(TapTest, TransmittedFramesReachLinux) {
  Bring({.name = TapName("t"), .ipv4_address = Subnet() + "1", .prefix_length = 24});
  if (IsSkipped()) return;
  int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(kTestEthertype));
  ASSERT_GE(s, 0);
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(kTestEthertype);
  addr.sll_ifindex = static_cast<int>(if_nametoindex(tap_->name().c_str()));
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{3, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  auto frame = MakeFrame(0xFFFFFFFFFFFF, kNicMac, kTestEthertype, 100, 0x42);
  ASSERT_TRUE(driver_->Transmit(frame.data(), frame.size()));
  driver_->Flush();
  std::vector<std::byte> got(2048);
  ssize_t n = recv(s, got.data(), got.size(), 0);
  close(s);
  ASSERT_EQ(n, static_cast<ssize_t>(frame.size()));
  got.resize(n);
  EXPECT_EQ(got, frame);
  EXPECT_EQ(nic_->stats()[kNicStatTxFrames], 1u);
}

uint16_t Ipv4Checksum(const std::byte* header, size_t length) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < length; i += 2) {
    sum += (std::to_integer<uint32_t>(header[i]) << 8) | std::to_integer<uint32_t>(header[i + 1]);
  }
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

void Put16(std::byte* p, uint16_t v) {
  p[0] = std::byte(v >> 8);
  p[1] = std::byte(v);
}

// A UDP datagram built by hand and sent through the TX ring is delivered by
// the Linux IP stack to an ordinary socket.
TEST_F(TapTest, UdpFromTheNicReachesALinuxSocket) {
  Bring({.name = TapName("u"), .ipv4_address = Subnet() + "1", .prefix_length = 24});
  if (IsSkipped()) return;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, (Subnet() + "1").c_str(), &local.sin_addr);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&local), sizeof local), 0);
  socklen_t len = sizeof local;
  ASSERT_EQ(getsockname(s, reinterpret_cast<sockaddr*>(&local), &len), 0);
  timeval tv{3, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, tap_->name().c_str(), IFNAMSIZ - 1);
  ASSERT_EQ(ioctl(s, SIOCGIFHWADDR, &ifr), 0);
  uint64_t tap_mac = 0;
  for (int i = 5; i >= 0; --i) tap_mac = (tap_mac << 8) | uint8_t(ifr.ifr_hwaddr.sa_data[i]);

  const std::string payload = "through the emulated NIC";
  auto frame = MakeFrame(tap_mac, kNicMac, 0x0800, 20 + 8 + payload.size(), 0);
  std::byte* ip = frame.data() + kNicEthHeaderSize;
  ip[0] = std::byte{0x45};
  Put16(ip + 2, static_cast<uint16_t>(20 + 8 + payload.size()));
  Put16(ip + 6, 0x4000);  // don't fragment
  ip[8] = std::byte{64};
  ip[9] = std::byte{17};  // UDP
  in_addr src;
  inet_pton(AF_INET, (Subnet() + "2").c_str(), &src);
  std::memcpy(ip + 12, &src, 4);
  std::memcpy(ip + 16, &local.sin_addr, 4);
  Put16(ip + 10, Ipv4Checksum(ip, 20));
  std::byte* udp = ip + 20;
  Put16(udp, 5555);
  std::memcpy(udp + 2, &local.sin_port, 2);
  Put16(udp + 4, static_cast<uint16_t>(8 + payload.size()));  // checksum 0: none
  std::memcpy(udp + 8, payload.data(), payload.size());

  ASSERT_TRUE(driver_->Transmit(frame.data(), frame.size()));
  driver_->Flush();
  char got[128] = {};
  sockaddr_in from{};
  socklen_t from_len = sizeof from;
  ssize_t n = recvfrom(s, got, sizeof got, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
  close(s);
  ASSERT_EQ(n, static_cast<ssize_t>(payload.size()));
  EXPECT_EQ(std::string(got, n), payload);
  EXPECT_EQ(from.sin_addr.s_addr, src.s_addr);
  EXPECT_EQ(ntohs(from.sin_port), 5555);
}

// The interface lives in a namespace the test creates; a process in that
// namespace sends, the NIC receives.
TEST_F(TapTest, InterfaceInATestNamespace) {
  const std::string ns = "umbt-ns-" + std::to_string(getpid());
  if (std::system(("ip netns add " + ns + " 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "cannot create a network namespace with `ip netns add` (needs root)";
  }
  struct NsGuard {
    std::string ns;
    ~NsGuard() { std::system(("ip netns del " + ns).c_str()); }
  } guard{ns};
  Bring({.name = TapName("n"), .netns = ns, .ipv4_address = Subnet() + "1", .prefix_length = 24});
  if (IsSkipped()) return;
  // setns() affects only the calling thread: send from a thread that joins the namespace.
  std::thread sender([&] {
    int fd = open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(setns(fd, CLONE_NEWNET), 0);
    close(fd);
    SendUdp(Subnet() + "2");
  });
  sender.join();
  EXPECT_TRUE(SawArpRequestFor(Subnet() + "2"));
  nic_.reset();  // before the namespace goes
}

// Deleting the namespace deletes the interface under the backend: it must
// notice and stop, not spin on a dead fd, and the NIC keeps working.
TEST_F(TapTest, NamespaceDeletedUnderTheBackend) {
  const std::string ns = "umbt-nd-" + std::to_string(getpid());
  if (std::system(("ip netns add " + ns + " 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "cannot create a network namespace with `ip netns add` (needs root)";
  }
  Bring({.name = TapName("d"), .netns = ns, .ipv4_address = Subnet() + "1", .prefix_length = 24});
  if (IsSkipped()) {
    std::system(("ip netns del " + ns).c_str());
    return;
  }
  ASSERT_EQ(std::system(("ip netns del " + ns).c_str()), 0);
  EXPECT_TRUE(TestDriver::SpinUntil([&] { return tap_->interface_gone(); }));
  auto frame = MakeFrame(0xFFFFFFFFFFFF, kNicMac, kTestEthertype, 60);
  ASSERT_TRUE(driver_->Transmit(frame.data(), frame.size()));
  driver_->Flush();
  EXPECT_TRUE(TestDriver::SpinUntil([&] {
    driver_->ReapTx();
    return driver_->TxIdle();
  }));
}

}  // namespace
}  // namespace umbra::hw::nic
