// The control socket of `umbra run`, driven from outside by `umbra status`
// and `umbra inject` as a person would: the socket's permissions, status,
// every kind of injection, the recovery printed live, and bad requests that
// get clear errors and leave the machine running.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/control/running_machine.h"

namespace umbra::testing {
namespace {

using namespace std::chrono_literals;

const std::string kMachine = MachineHead("ctl") + R"pb(
devices { name: "echo0" bus: "platform" compatible: "umbra,echo" device_class: "echo" }
devices {
  name: "disk0" bus: "platform" compatible: "umbra,disk-emu" device_class: "block"
  settings { key: "blocks" value: "256" }
}
drivers { name: "echo" bus: "platform" compatible: "umbra,echo" binary: "umbra-driver-echo" }
drivers { name: "disk" bus: "platform" compatible: "umbra,disk-emu" binary: "umbra-driver-disk" }
)pb";

class ControlSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("umbra-ctl-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    machine_file_ = (dir_ / "ctl.textproto").string();
    std::ofstream(machine_file_) << kMachine;
    run_dir_ = (dir_ / "run").string();
  }
  void TearDown() override {
    machine_.reset();
    std::filesystem::remove_all(dir_);
  }
  RunningMachine& Start() {
    machine_ = std::make_unique<RunningMachine>(run_dir_);
    EXPECT_TRUE(machine_->Start(machine_file_)) << machine_->output();
    return *machine_;
  }
  Output Umbra(const std::string& args) { return Shell(std::string(UMBRA_BIN) + " " + args); }
  std::string Where() const { return " --run-dir " + run_dir_; }

  std::filesystem::path dir_;
  std::string machine_file_;
  std::string run_dir_;
  std::unique_ptr<RunningMachine> machine_;
};

TEST_F(ControlSocketTest, SocketIsOwnerOnlyInAnOwnerOnlyFolder) {
  Start();
  struct stat dir {
  }, sock{};
  ASSERT_EQ(stat(run_dir_.c_str(), &dir), 0);
  ASSERT_EQ(stat((run_dir_ + "/control.sock").c_str(), &sock), 0);
  EXPECT_EQ(dir.st_mode & 0777, 0700u);
  EXPECT_TRUE(S_ISSOCK(sock.st_mode));
  EXPECT_EQ(sock.st_mode & 0777, 0600u);
}

TEST_F(ControlSocketTest, RunRefusesARunFolderOthersMayWriteInto) {
  std::filesystem::create_directories(run_dir_);
  chmod(run_dir_.c_str(), 0777);
  auto r = Umbra("run " + machine_file_ + " --for 1" + Where());
  EXPECT_EQ(r.code, 73) << r.out;
  EXPECT_NE(r.out.find("open to other users"), std::string::npos) << r.out;
}

TEST_F(ControlSocketTest, StatusListsDevicesDriversAndRecoveries) {
  Start();
  auto r = Umbra("status --json" + Where());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"machine\":\"ctl\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"name\":\"echo0\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"name\":\"disk0\""), std::string::npos) << r.out;
  // The serving driver's program, resolved to its path.
  EXPECT_NE(r.out.find("/umbra-driver-disk\",\"driver_pid\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"state\":\"bound\""), std::string::npos) << r.out;
  auto text = Umbra("status" + Where());
  ASSERT_EQ(text.code, 0) << text.out;
  EXPECT_NE(text.out.find("echo0"), std::string::npos) << text.out;
}

TEST_F(ControlSocketTest, InjectedSigkillIsRecoveredAndPrintedAsItHappens) {
  RunningMachine& m = Start();
  auto r = Umbra("inject disk0 sigkill" + Where());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("sent SIGKILL"), std::string::npos) << r.out;
  ASSERT_TRUE(m.WaitFor("\"kind\":\"recovered\",\"object\":\"disk0\"", 10s)) << m.output();
  EXPECT_NE(m.output().find("\"kind\":\"inject\",\"object\":\"disk0\""), std::string::npos) << m.output();
  auto status = Umbra("status --json" + Where());
  EXPECT_NE(status.out.find("\"recoveries\":\"1\""), std::string::npos) << status.out;
}

TEST_F(ControlSocketTest, EveryKindOfFaultIsInjectedAndRecovered) {
  RunningMachine& m = Start();
  // Host-side signals, a driver-side crash, abort and hang armed live, and a
  // double fault: each ends in one more recovery.
  const char* faults[] = {"sigsegv", "sigstop", "segfault", "abort", "hang", "kill_during_recovery", "sigabrt"};
  const std::string recovered = "\"kind\":\"recovered\",\"object\":\"echo0\"";
  size_t n = 0;
  for (const char* fault : faults) {
    auto r = Umbra(std::string("inject echo0 ") + fault + Where());
    ASSERT_EQ(r.code, 0) << fault << ": " << r.out;
    // kill_during_recovery may end in one recovery or two.
    ASSERT_TRUE(m.WaitForCount(recovered, n + 1, 15s)) << fault << "\n" << m.output();
    n = m.Count(recovered);
  }
  EXPECT_GE(n, std::size(faults));
  // Failpoints armed live are not armed again in the replacement: it stays up.
  auto status = Umbra("status --json" + Where());
  EXPECT_NE(status.out.find("\"state\":\"bound\""), std::string::npos) << status.out;
}

TEST_F(ControlSocketTest, RepeatedInjectionCyclesThroughTheFaults) {
  RunningMachine& m = Start();
  auto r = Umbra("inject disk0 sigkill,segfault --every 100ms --count 4" + Where());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(Count(r.out, "sent SIGKILL"), 2u) << r.out;
  EXPECT_EQ(Count(r.out, "armed sdk.heartbeat=1*segfault"), 2u) << r.out;
  EXPECT_TRUE(m.WaitForCount("\"kind\":\"recovered\",\"object\":\"disk0\"", 4, 15s));
  EXPECT_EQ(m.Count("\"kind\":\"recovered\",\"object\":\"disk0\""), 4u) << m.output();
}

TEST_F(ControlSocketTest, BadRequestsGetClearErrorsAndTheMachineRunsOn) {
  Start();
  auto unknown_device = Umbra("inject nosuch sigkill" + Where());
  EXPECT_EQ(unknown_device.code, 65) << unknown_device.out;
  EXPECT_NE(unknown_device.out.find("no device \"nosuch\""), std::string::npos) << unknown_device.out;
  auto unknown_fault = Umbra("inject disk0 explode" + Where());
  EXPECT_EQ(unknown_fault.code, 65) << unknown_fault.out;
  EXPECT_NE(unknown_fault.out.find("unknown fault \"explode\""), std::string::npos) << unknown_fault.out;
  auto bad_args = Umbra("inject disk0 'delay(abc)'" + Where());
  EXPECT_EQ(bad_args.code, 65) << bad_args.out;
  // Raw lines on the socket: garbage, an empty request, a line too long.
  const std::string sock = run_dir_ + "/control.sock";
  auto garbage = Shell("printf 'not json\\n{}\\n{\"inject\":{\"device\":7}}\\n' | socat -t 2 - UNIX-CONNECT:" + sock);
  EXPECT_EQ(Count(garbage.out, "\"ok\":false") + Count(garbage.out, "\"error\""), 6u) << garbage.out;
  auto too_long = Shell("head -c 70000 /dev/zero | tr '\\0' x | socat -t 2 - UNIX-CONNECT:" + sock);
  EXPECT_NE(too_long.out.find("longer than 64 KiB"), std::string::npos) << too_long.out;
  auto status = Umbra("status" + Where());
  EXPECT_EQ(status.code, 0) << status.out;
}

TEST_F(ControlSocketTest, TwoRunsOfOneMachineFileGetAFolderEach) {
  const std::string env = "UMBRA_RUN_DIR=" + (dir_ / "base").string() + " ";
  const std::string run = env + UMBRA_BIN + " run " + machine_file_ + " --for 4";
  Shell("(" + run + " > " + (dir_ / "first.txt").string() + " 2>&1 &); sleep 1; (" + run + " > " +
        (dir_ / "second.txt").string() + " 2>&1 &)");
  std::this_thread::sleep_for(1500ms);
  auto both = Shell(env + UMBRA_BIN + " status");
  EXPECT_EQ(both.code, 69) << both.out;
  EXPECT_NE(both.out.find("several machines run"), std::string::npos) << both.out;
  EXPECT_NE(both.out.find("ctl."), std::string::npos) << both.out;  // the second's folder: ctl.PID
  auto first = Shell(env + UMBRA_BIN + " status --machine ctl");
  EXPECT_EQ(first.code, 0) << first.out;
  std::this_thread::sleep_for(3s);  // both end (--for 4)
  std::string second;
  std::getline(std::ifstream(dir_ / "second.txt"), second, '\0');
  EXPECT_NE(second.find("listening on"), std::string::npos) << second;
}

TEST_F(ControlSocketTest, StatusWithoutARunningMachineSaysSo) {
  auto r = Umbra("status" + Where());
  EXPECT_EQ(r.code, 69) << r.out;
  EXPECT_NE(r.out.find("no machine listens"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace umbra::testing
