// `umbra demo --json` end to end: the README's first command, as CI runs it.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace {

struct CommandRun {
  int status = -1;
  std::string out;
};

CommandRun RunCommand(const std::string& cmd) {
  CommandRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

bool Has(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

TEST(Demo, EveryFaultRecoversAndEveryApplicationVerifies) {
  const std::string dir = std::filesystem::temp_directory_path() / ("umbra-demo-test-" + std::to_string(getpid()));
  // What an earlier run left behind: a disk image full of old blocks. The
  // demo starts from a blank disk anyway.
  std::filesystem::create_directories(dir);
  {
    std::ofstream old(dir + "/disk0.img", std::ios::binary);
    const std::string block(4096, '\xab');
    for (int i = 0; i < 4096; ++i) old << block;
  }
  CommandRun r = RunCommand(std::string(UMBRA_BINARY) + " demo --json --out " + dir + " 2>/dev/null");
  EXPECT_EQ(r.status, 0) << r.out;
  // One JSON object: every fault recovered, every application verified, the
  // links did what they are for, and the trace and report were written.
  EXPECT_TRUE(Has(r.out, "\"ok\":true")) << r.out;
  EXPECT_FALSE(Has(r.out, "\"recovered\":false")) << r.out;
  EXPECT_FALSE(Has(r.out, "\"verified\":false")) << r.out;
  for (const char* dev : {"\"device\":\"nic0\"", "\"device\":\"disk0\"", "\"device\":\"ttyS0\"", "\"device\":\"snd0\""}) {
    EXPECT_TRUE(Has(r.out, dev)) << dev;
  }
  for (const char* fault : {"\"fault\":\"segfault\"", "\"fault\":\"abort\"", "\"fault\":\"sigkill\"", "\"fault\":\"hang\""}) {
    EXPECT_TRUE(Has(r.out, fault)) << fault;
  }
  EXPECT_TRUE(Has(r.out, "\"consumer_held\":true"));
  EXPECT_TRUE(Has(r.out, "\"optional_consumer_degraded\":true"));
  EXPECT_TRUE(Has(r.out, "would close a cycle: disk0 -> ttyS0 -> nic0 -> disk0"));
  EXPECT_TRUE(std::filesystem::file_size(dir + "/umbra-demo.trace") > 0);
  EXPECT_TRUE(std::filesystem::file_size(dir + "/umbra-demo.html") > 0);
  std::filesystem::remove_all(dir);
}

TEST(Demo, MinimalDemoCrashesAnEchoDriverEveryWay) {
  CommandRun r = RunCommand(std::string(UMBRA_BINARY) + " demo --minimal 2>/dev/null");
  EXPECT_EQ(r.status, 0) << r.out;
  for (const char* s : {"SIGSEGV", "SIGABRT", "SIGKILL", "SIGBUS", "hang", "missed-heartbeat"}) {
    EXPECT_TRUE(Has(r.out, s)) << s << "\n" << r.out;
  }
}

TEST(Demo, BadUsageIsExitCode64) {
  CommandRun r = RunCommand(std::string(UMBRA_BINARY) + " demo --no-such-flag 2>&1");
  EXPECT_EQ(r.status, 64) << r.out;
}

}  // namespace
