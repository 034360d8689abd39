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

TEST_F(CliTest, ValidateSaysOkForEveryExample) {
  for (const char* f : {"machines/echo-links.textproto", "machines/links.textproto", "machines/links.json",
                        "machines/small.textproto", "campaigns/echo-failstop.textproto"}) {
    auto r = Umbra("validate " + Example(f));
    EXPECT_EQ(r.code, 0) << f << ": " << r.out;
    EXPECT_EQ(r.out, "OK\n") << f;
  }
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
  auto path = Write("cycle.textproto", std::string(kMachineHead) +
                                           "devices { name: \"a\" bus: \"platform\" }\n"
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
