// The net frontend: a TAP on the class side in one namespace, the NIC's wire
// TAP in another, so that iperf3 and socat (programs nobody here wrote) talk
// TCP through net::Interface → shadow → driver → emulated NIC while the NIC
// driver is crashed every 500 ms (segfault, abort, SIGKILL, hang in turn).
// Needs root, /dev/net/tun, ip, iperf3 and socat; skips saying which is missing.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "tests/control/running_machine.h"

namespace umbra::testing {
namespace {

using namespace std::chrono_literals;

std::string Missing() {
  if (geteuid() != 0) return "needs root (TAP interfaces, network namespaces)";
  if (access("/dev/net/tun", R_OK | W_OK) != 0) return "needs /dev/net/tun";
  for (const char* p : {"ip", "iperf3", "socat", "sha256sum"}) {
    if (Shell(std::string("command -v ") + p).code != 0) return std::string("needs ") + p;
  }
  return "";
}

// The first "bytes" after `section` in iperf3's JSON (-1 when absent).
long long IperfBytes(const std::string& json, const std::string& section) {
  const size_t at = json.find("\"" + section + "\"");
  if (at == std::string::npos) return -1;
  std::smatch m;
  const std::string rest = json.substr(at);
  if (!std::regex_search(rest, m, std::regex("\"bytes\":\\s*([0-9]+)"))) return -1;
  return std::stoll(m[1]);
}

class NetFrontendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = Missing(); !why.empty()) GTEST_SKIP() << why;
    const std::string id = std::to_string(getpid() % 100000);
    app_ = "umbra-fe-app-" + id;
    peer_ = "umbra-fe-peer-" + id;
    dir_ = std::filesystem::temp_directory_path() / ("umbra-netfe-" + id);
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "net.textproto") << MachineHead("net") + R"pb(
devices {
  name: "nic0" bus: "platform" compatible: "umbra,e1000-emu" device_class: "net"
  settings { key: "backend" value: "tap" }
  settings { key: "tap" value: "umfw)pb" + id + R"pb(" }
  frontend {
    interface: "umfa)pb" + id + R"pb("
    netns: ")pb" + app_ + R"pb(" address: "10.78.0.1/24"
    wire_netns: ")pb" + peer_ + R"pb(" wire_address: "10.78.0.2/24"
  }
}
drivers { name: "nic" bus: "platform" compatible: "umbra,e1000-emu" binary: "umbra-driver-nic" }
)pb";
    machine_ = std::make_unique<RunningMachine>((dir_ / "run").string());
    ASSERT_TRUE(machine_->Start((dir_ / "net.textproto").string())) << machine_->output();
  }
  void TearDown() override {
    machine_.reset();  // deletes the namespaces it made
    // Should the machine have died without cleaning up: nothing left behind.
    if (!app_.empty()) Shell("ip netns del " + app_ + "; ip netns del " + peer_);
    std::filesystem::remove_all(dir_);
  }
  std::string In(const std::string& ns, const std::string& cmd) { return "ip netns exec " + ns + " " + cmd; }

  std::string app_, peer_;
  std::filesystem::path dir_;
  std::unique_ptr<RunningMachine> machine_;
};

TEST_F(NetFrontendTest, PingCrossesTheShadowedDriver) {
  auto ping = Shell(In(app_, "ping -c 3 -i 0.2 -W 2 10.78.0.2"));
  EXPECT_EQ(ping.code, 0) << ping.out;
}

TEST_F(NetFrontendTest, Iperf3RunsTenSecondsWhileTheDriverIsKilledEvery500ms) {
  const std::string srv = (dir_ / "server.json").string();
  Shell(In(peer_, "iperf3 -s -1 -J -D --logfile " + srv));
  std::this_thread::sleep_for(300ms);
  // Ten seconds of faults, as long as iperf3 sends; TCP's retransmission
  // timer may have backed off by then, so iperf3 may need a while to finish.
  Crasher crasher(machine_->run_dir(), "nic0", {"segfault", "abort", "sigkill", "hang"}, 500ms, 20);
  auto client = Shell("timeout 120 " + In(app_, "iperf3 -c 10.78.0.2 -t 10 -J"));
  const int injected = crasher.Stop();
  EXPECT_EQ(client.code, 0) << client.out;
  EXPECT_GE(injected, 10);
  std::this_thread::sleep_for(500ms);
  std::string server;
  std::getline(std::ifstream(srv), server, '\0');
  const long long received = IperfBytes(server, "sum_received");
  EXPECT_GT(received, 0) << server;
  // What the server read is what the client was told it received, and no
  // more than the client wrote (iperf3's sender count includes what was
  // still in its socket buffer when the timer ended).
  EXPECT_EQ(IperfBytes(client.out, "sum_received"), received) << client.out;
  EXPECT_LE(received, IperfBytes(client.out, "sum_sent"));
  EXPECT_TRUE(machine_->WaitForCount("\"kind\":\"recovered\"", 10, 5s)) << machine_->output();
}

TEST_F(NetFrontendTest, EveryByteSocatSendsArrivesAcrossCrashes) {
  // 32 MiB over TCP; the receiver's checksum must equal the sender's.
  const std::string in = (dir_ / "in.bin").string(), sum = (dir_ / "got.sum").string();
  ASSERT_EQ(Shell("head -c 33554432 /dev/urandom > " + in).code, 0);
  Shell("(" + In(peer_, "timeout 100 socat -u TCP-LISTEN:5299,reuseaddr -") + " | sha256sum > " + sum +
        ") >/dev/null 2>&1 &");
  std::this_thread::sleep_for(300ms);
  Crasher crasher(machine_->run_dir(), "nic0", {"segfault", "abort", "sigkill", "hang"}, 500ms, 12);
  auto send = Shell("timeout 100 " + In(app_, "socat -u OPEN:" + in + " TCP:10.78.0.2:5299,retry=50,interval=0.1"));
  std::this_thread::sleep_for(1s);
  crasher.Stop();
  EXPECT_EQ(send.code, 0) << send.out;
  const std::string want = Shell("sha256sum < " + in).out;
  std::string got;
  for (int i = 0; i < 100 && got.empty(); ++i) {
    std::getline(std::ifstream(sum), got, '\0');
    if (got.empty()) std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(got, want);
  EXPECT_TRUE(machine_->WaitForCount("\"kind\":\"recovered\"", 1, 5s)) << machine_->output();
}

}  // namespace
}  // namespace umbra::testing
