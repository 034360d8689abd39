// `umbra tree`, `umbra run` and `umbra validate`, run as the built program:
// happy paths, and errors with their exit codes and messages.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace {

struct Output {
  int code = -1;
  std::string out;  // stdout and stderr together
};

Output Umbra(const std::string& args) {
  const std::string cmd = std::string(UMBRA_BIN) + " " + args + " 2>&1";
  Output r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string Example(const std::string& name) { return std::string(UMBRA_SOURCE_DIR) + "/examples/" + name; }

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("umbra-cli-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    // `umbra run` keeps its control socket in $XDG_RUNTIME_DIR/umbra/NAME: a
    // folder of this test's own, so that tests running the same example
    // machine at once do not find each other's.
    setenv("XDG_RUNTIME_DIR", dir_.c_str(), 1);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    auto path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }
  std::filesystem::path dir_;
};

constexpr const char* kMachineHead = "name: \"m\"\nbuses { name: \"platform\" }\n";

TEST_F(CliTest, ValidateSaysOkForEveryRunnableExample) {
  for (const char* f :
       {"machines/echo-links.textproto", "machines/small.textproto", "campaigns/echo-failstop.textproto"}) {
    auto r = Umbra("validate " + Example(f));
    EXPECT_EQ(r.code, 0) << f << ": " << r.out;
    EXPECT_EQ(r.out, "OK\n") << f;
  }
}

// links.textproto and links.json draw a device model (`umbra tree`); their
// clock, PHY and console have no device class, so `umbra run` could not
// stand a shadow in front of them, and validate says so.
TEST_F(CliTest, ValidateRefusesTheModelOnlyExamplesButTreeShowsThem) {
  for (const char* f : {"machines/links.textproto", "machines/links.json"}) {
    auto r = Umbra("validate " + Example(f));
    EXPECT_EQ(r.code, 78) << f << ": " << r.out;
    EXPECT_NE(r.out.find("devices[0].device_class"), std::string::npos) << r.out;
    EXPECT_EQ(Umbra("tree " + Example(f)).code, 0) << f;
  }
}

// A machine of one device and its driver, with `device` appended inside the
// device's braces; `device_line` is the device's line (3).
std::string OneNic(const std::string& device, const std::string& compatible = "umbra,e1000-emu") {
  return std::string(kMachineHead) + "devices { name: \"nic0\" bus: \"platform\" compatible: \"" + compatible +
         "\" device_class: \"net\"\n  " + device +
         " }\n"
         "drivers { name: \"nic\" bus: \"platform\" compatible: \"umbra,e1000-emu\" binary: \"umbra-driver-nic\" }\n";
}

// Regression: validate said OK to a shadow setting nothing reads and to a
// compatible no driver matches; `umbra run` then left the device unbound
// without a reason.
TEST_F(CliTest, ValidateAndRunRefuseAShadowSettingTheClassDoesNotTake) {
  auto path = Write("shadow.textproto", OneNic("settings { key: \"shadow.queue_events\" value: \"lots\" }"));
  for (const std::string& cmd : {"validate " + path, "run " + path + " --for 0.2"}) {
    auto r = Umbra(cmd);
    EXPECT_EQ(r.code, 78) << cmd << r.out;
    EXPECT_NE(r.out.find(path + ":4:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("devices[0].settings[\"shadow.queue_events\"]"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("no setting 'queue_events' (it takes: rx_buffers)"), std::string::npos) << r.out;
  }
}

TEST_F(CliTest, ValidateRefusesAShadowSettingOfTheWrongKind) {
  auto path = Write("kind.textproto", OneNic("settings { key: \"shadow.rx_buffers\" value: \"lots\" }"));
  auto r = Umbra("validate " + path);
  EXPECT_EQ(r.code, 78) << r.out;
  EXPECT_NE(r.out.find("'lots', not a whole number"), std::string::npos) << r.out;
}

TEST_F(CliTest, ValidateAndRunRefuseAMisspeltCompatibleAndSuggestTheRightOne) {
  auto path = Write("typo.textproto", OneNic("", "umbra,e1000-emv"));
  for (const std::string& cmd : {"validate " + path, "run " + path + " --for 0.2"}) {
    auto r = Umbra(cmd);
    EXPECT_EQ(r.code, 78) << cmd << r.out;
    EXPECT_NE(r.out.find(path + ":3:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("devices[0].compatible[0]: no driver on bus \"platform\" matches \"umbra,e1000-emv\" "
                         "(did you mean \"umbra,e1000-emu\"?)"),
              std::string::npos)
        << r.out;
  }
}

TEST_F(CliTest, ValidateRefusesAHardwareSettingTheDeviceDoesNotKnow) {
  auto path = Write("hw.textproto", OneNic("settings { key: \"maq\" value: \"02:00:00:00:00:01\" }"));
  auto r = Umbra("validate " + path);
  EXPECT_EQ(r.code, 78) << r.out;
  EXPECT_NE(r.out.find("devices[0].settings[\"maq\"]: unknown setting 'maq' for umbra,e1000-emu"), std::string::npos)
      << r.out;
  auto bad_mac = Write("mac.textproto", OneNic("settings { key: \"mac\" value: \"02:00\" }"));
  r = Umbra("validate " + bad_mac);
  EXPECT_EQ(r.code, 78) << r.out;
  EXPECT_NE(r.out.find("is not xx:xx:xx:xx:xx:xx"), std::string::npos) << r.out;
}

TEST_F(CliTest, ValidateRefusesARecoverySettingOutOfRangeNamingTheField) {
  auto path = Write("hb.textproto", OneNic("recovery {\n    heartbeat_period_ms: 1\n  }"));
  auto r = Umbra("validate " + path);
  EXPECT_EQ(r.code, 78) << r.out;
  EXPECT_NE(r.out.find(path + ":5:5: devices[0].recovery.heartbeat_period_ms: 1 is out of range"), std::string::npos)
      << r.out;
  auto twice =
      Write("twice.textproto",
            std::string(kMachineHead) + "settings { heartbeat_period_ms: 20 recovery { heartbeat_period_ms: 10 } }\n");
  r = Umbra("validate " + twice);
  EXPECT_EQ(r.code, 78) << r.out;
  EXPECT_NE(r.out.find("settings.recovery.heartbeat_period_ms: given twice"), std::string::npos) << r.out;
  auto ok = Write("ok.textproto", OneNic("recovery { warm_standby: false heartbeat_period_ms: 20 "
                                         "backoff { initial_ms: 5 crash_loop_ms: 50 } }"));
  EXPECT_EQ(Umbra("validate " + ok).out, "OK\n");
}

TEST_F(CliTest, ValidateMissingFileIs66) {
  auto r = Umbra("validate " + (dir_ / "nope.textproto").string());
  EXPECT_EQ(r.code, 66);
  EXPECT_NE(r.out.find("nope.textproto: no such file"), std::string::npos) << r.out;
}

TEST_F(CliTest, ValidateSyntaxErrorIs65WithLineAndColumn) {
  auto path = Write("bad.textproto", std::string(kMachineHead) + "devices { name \"a\" }\n");
  auto r = Umbra("validate " + path);
  EXPECT_EQ(r.code, 65) << r.out;
  EXPECT_NE(r.out.find(path + ":3:"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("OK"), std::string::npos);
}

TEST_F(CliTest, ValidateUnknownFieldIs65) {
  auto path = Write("bad.json", R"({"name": "m", "devices": [{"nmae": "a"}]})");
  auto r = Umbra("validate " + path);
  EXPECT_EQ(r.code, 65) << r.out;
  EXPECT_NE(r.out.find("devices[0].nmae"), std::string::npos) << r.out;
}

TEST_F(CliTest, ValidateCycleIs78AndNamesTheCycle) {
  auto path = Write("cycle.textproto", std::string(kMachineHead) + "devices { name: \"a\" bus: \"platform\" }\n"
                                                                   "devices { name: \"b\" bus: \"platform\" }\n"
                                                                   "devices { name: \"c\" bus: \"platform\" }\n"
                                                                   "links { consumer: \"a\" supplier: \"b\" }\n"
                                                                   "links { consumer: \"b\" supplier: \"c\" }\n"
                                                                   "links { consumer: \"c\" supplier: \"a\" }\n");
  auto r = Umbra("validate " + path);
  EXPECT_EQ(r.code, 78) << r.out;
  EXPECT_NE(r.out.find(path + ":8:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("links[2]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("c -> a -> b -> c"), std::string::npos) << r.out;
}

TEST_F(CliTest, ValidateUnknownBusIs78) {
  auto path = Write("bus.textproto", std::string(kMachineHead) + "devices { name: \"a\" bus: \"pcie\" }\n");
  auto r = Umbra("validate " + path);
  EXPECT_EQ(r.code, 78) << r.out;
  EXPECT_NE(r.out.find(path + ":3:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("devices[0].bus: unknown bus \"pcie\""), std::string::npos) << r.out;
}

TEST_F(CliTest, ValidateCampaignErrors) {
  auto bad_fault = Write("c.textproto", "workloads: \"echo-stream\"\nfaults: \"meteor\"\n");
  auto r = Umbra("validate " + bad_fault);
  EXPECT_EQ(r.code, 78) << r.out;
  EXPECT_NE(r.out.find(bad_fault + ":2:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("meteor"), std::string::npos) << r.out;
  auto bad_syntax = Write("d.textproto", "workloads: \"echo-stream\"\nruns_per_cell: lots\n");
  r = Umbra("validate " + bad_syntax);
  EXPECT_EQ(r.code, 65) << r.out;
  auto empty = Write("e.textproto", "# nothing\n");
  r = Umbra("validate " + empty);
  EXPECT_EQ(r.code, 65) << r.out;
  EXPECT_NE(r.out.find("empty"), std::string::npos) << r.out;
}

TEST_F(CliTest, ValidateWithoutFileIsUsage) {
  auto r = Umbra("validate");
  EXPECT_EQ(r.code, 64) << r.out;
}

TEST_F(CliTest, TreeOfTheDefaultMachine) {
  auto r = Umbra("tree");
  EXPECT_EQ(r.code, 0) << r.out;
  for (const char* s : {"nic0", "disk0", "ttyS0", "managed", "optional", "[bound]"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s << " in\n" << r.out;
  }
}

TEST_F(CliTest, TreeOfAFileAsJson) {
  auto r = Umbra("tree " + Example("machines/echo-links.textproto") + " --json");
  EXPECT_EQ(r.code, 0) << r.out;
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.front(), '{') << r.out;
  EXPECT_NE(r.out.find("\"echo1\""), std::string::npos) << r.out;
}

TEST_F(CliTest, TreeErrors) {
  EXPECT_EQ(Umbra("tree " + (dir_ / "none.textproto").string()).code, 66);
  auto path = Write("bus.textproto", std::string(kMachineHead) + "devices { name: \"a\" bus: \"pcie\" }\n");
  auto r = Umbra("tree " + path);
  EXPECT_EQ(r.code, 78) << r.out;
  EXPECT_NE(r.out.find("umbra tree: " + path + ":3:"), std::string::npos) << r.out;
}

TEST_F(CliTest, RunForASecond) {
  auto r = Umbra("run " + Example("machines/echo-links.textproto") + " --for 1");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("device echo1  [bound]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("time is up"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("recoveries"), std::string::npos) << "the summary: " << r.out;
}

TEST_F(CliTest, RunAsJson) {
  auto r = Umbra("run " + Example("machines/echo-links.textproto") + " --for 0.5 --json");
  EXPECT_EQ(r.code, 0) << r.out;
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.front(), '{') << r.out;
  EXPECT_NE(r.out.find("\"ok\":true"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"summary\":["), std::string::npos) << r.out;
}

TEST_F(CliTest, RunReportsADeviceThatDoesNotBindWithExit1) {
  auto path = Write("nodriver.textproto", std::string(kMachineHead) +
                                              "devices { name: \"e\" bus: \"platform\" compatible: \"umbra,echo\" "
                                              "device_class: \"echo\" }\n"
                                              "drivers { name: \"echo\" bus: \"platform\" compatible: \"umbra,echo\" "
                                              "binary: \"umbra-driver-missing\" }\n");
  auto r = Umbra("run " + path + " --for 0.2");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("umbra-driver-missing"), std::string::npos) << r.out;
}

TEST_F(CliTest, RunErrors) {
  EXPECT_EQ(Umbra("run " + (dir_ / "none.textproto").string()).code, 66);
  EXPECT_EQ(Umbra("run").code, 64);
  auto path = Write("syntax.textproto", "buses { name: }\n");
  EXPECT_EQ(Umbra("run " + path).code, 65);
}

// Ctrl-C: everything is shut down and the command exits normally.
TEST_F(CliTest, RunStopsCleanlyOnSigint) {
  const std::string out = (dir_ / "out.txt").string();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FILE* f = freopen(out.c_str(), "w", stdout);
    (void)f;
    execl(UMBRA_BIN, UMBRA_BIN, "run", Example("machines/echo-links.textproto").c_str(), "--for", "60",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait for the tree, which is printed once everything runs.
  for (int i = 0; i < 300; ++i) {
    std::ifstream in(out);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.find("class echo") != std::string::npos) break;
    usleep(50'000);
  }
  kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "exited, not killed by the signal";
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("Interrupt"), std::string::npos) << text;
  EXPECT_NE(text.find("machine stopped"), std::string::npos) << "devices were unbound: " << text;
}

}  // namespace
