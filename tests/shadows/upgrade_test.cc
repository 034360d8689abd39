// Live update through the shadow (DriverHost::Upgrade), end to end with real
// driver processes: new builds of the echo class's test driver are copies of
// its binary whose file names say how they misbehave (faulty_driver.cc).
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "runtime/supervisor/supervisor.h"
#include "shadows/echo/echo_shadow.h"

namespace umbra::shadows::echo {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kMs = 1'000'000;

size_t CountEntries(const char* dir) {
  size_t n = 0;
  if (DIR* d = opendir(dir)) {
    while (const dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// Processes whose parent is this one.
size_t CountChildren() {
  size_t n = 0;
  const std::string me = std::to_string(getpid());
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::string state, ppid;
    std::istringstream rest(line.substr(close + 2));
    rest >> state >> ppid;
    n += ppid == me;
  }
  return n;
}

size_t CountLines(const char* path) {
  std::ifstream in(path);
  size_t n = 0;
  for (std::string l; std::getline(in, l);) ++n;
  return n;
}

class UpgradeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("umbra-upgrade-test." + std::to_string(getpid()));
    fs::create_directories(dir_);
    runtime::DriverHostOptions o;
    o.device_name = "echo0";
    o.driver_binary = UMBRA_FAULTY_DRIVER;
    o.data = {.ring_entries = 16, .buffer_size = 256, .buffer_count = 16};
    o.warm_standby = true;
    host_ = *sup_.AddDevice(std::move(o));
    shadow_ = EchoShadow::Create(*host_);
    shadow_->Start();
    ASSERT_TRUE(shadow_->WaitUntilPassive(10 * kSec).has_value());
    ASSERT_TRUE(shadow_->SetTag("blue").has_value());
  }

  void TearDown() override {
    StopClient();
    shadow_.reset();
    sup_.Stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A "new build": a copy of the test driver under a telling name.
  std::string Build(const std::string& name, const char* from = UMBRA_FAULTY_DRIVER) {
    const fs::path p = dir_ / name;
    fs::copy_file(from, p, fs::copy_options::overwrite_existing);
    fs::permissions(p, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                           fs::perms::others_exec);
    return p.string();
  }

  // A client echoing and checking without pause until StopClient.
  void StartClient() {
    client_ = std::thread([this] {
      std::vector<std::byte> data(64);
      for (uint8_t seed = 0; !stop_; ++seed) {
        for (size_t i = 0; i < data.size(); ++i) data[i] = std::byte(seed + i);
        auto r = shadow_->Echo(data);
        bool right = r.has_value();
        for (size_t i = 0; right && i < data.size(); ++i) right = data[i] == ~std::byte(seed + i);
        if (right)
          ++served_;
        else
          ++wrong_;
      }
    });
    const int64_t until = MonotonicNanos() + 5 * kSec;
    while (served_ < 20 && MonotonicNanos() < until) usleep(1000);
  }
  void StopClient() {
    stop_ = true;
    if (client_.joinable()) client_.join();
  }

  runtime::UpgradeResult Upgrade(const std::string& binary, int64_t probation_ns = 300 * kMs) {
    auto r = host_->Upgrade({.binary = binary, .probation_ns = probation_ns});
    EXPECT_TRUE(r.has_value()) << r.error().ToString();
    return r ? *r : runtime::UpgradeResult{};
  }

  fs::path dir_;
  runtime::Supervisor sup_;
  runtime::DriverHost* host_ = nullptr;
  std::unique_ptr<EchoShadow> shadow_;
  std::thread client_;
  std::atomic<bool> stop_{false};
  std::atomic<int> served_{0}, wrong_{0};
};

TEST_F(UpgradeTest, UnderLoadTheNewBuildTakesOverWithItsConfigurationAndNoRequestFails) {
  StartClient();
  const std::string v2 = Build("faulty-v2");
  const runtime::UpgradeResult r = Upgrade(v2);
  EXPECT_TRUE(r.upgraded) << r.reason;
  EXPECT_FALSE(r.rolled_back);
  EXPECT_EQ(r.driver_version, "2.0");
  EXPECT_GT(r.gap_ns, 0);
  const int before = served_;
  const int64_t until = MonotonicNanos() + 5 * kSec;
  while (served_ < before + 20 && MonotonicNanos() < until) usleep(1000);
  StopClient();
  EXPECT_EQ(wrong_, 0) << "requests failed or came back wrong across the upgrade";
  EXPECT_GE(served_, before + 20) << "the new driver does not serve";
  EXPECT_EQ(host_->driver_info().binary, v2);
  EXPECT_EQ(host_->driver_info().version, "2.0");
  EXPECT_EQ(*shadow_->DriverTag(), "blue") << "the tag was not replayed into the new driver";
  ASSERT_FALSE(shadow_->recoveries().empty());
  EXPECT_EQ(shadow_->recoveries().back().detection.reason, runtime::DetectReason::kUpgrade);
  EXPECT_EQ(host_->stats().restarts, 0u) << "an upgrade is not a restart";
}

TEST_F(UpgradeTest, ABuildThatFailsItsProbeIsRolledBackAndTheOldOneServes) {
  StartClient();
  const std::string old = host_->driver_info().binary;
  const runtime::UpgradeResult r = Upgrade(Build("faulty-probe-fails"));
  EXPECT_FALSE(r.upgraded);
  EXPECT_TRUE(r.rolled_back);
  EXPECT_NE(r.reason.find("probe"), std::string::npos) << r.reason;
  ASSERT_TRUE(shadow_->WaitUntilPassive(10 * kSec).has_value());
  const int before = served_;
  const int64_t until = MonotonicNanos() + 5 * kSec;
  while (served_ < before + 20 && MonotonicNanos() < until) usleep(1000);
  StopClient();
  EXPECT_EQ(wrong_, 0);
  EXPECT_GE(served_, before + 20);
  EXPECT_EQ(host_->state(), runtime::DeviceState::kRunning);
  EXPECT_EQ(host_->driver_info().binary, old);
  EXPECT_EQ(*shadow_->DriverTag(), "blue");
}

TEST_F(UpgradeTest, ABuildThatCrashesDuringItsProbationIsRolledBackAndTheOldOneServes) {
  StartClient();
  const std::string old = host_->driver_info().binary;
  const runtime::UpgradeResult r = Upgrade(Build("faulty-crashes-soon"), 2 * kSec);
  EXPECT_FALSE(r.upgraded);
  EXPECT_TRUE(r.rolled_back);
  EXPECT_NE(r.reason.find("signal ABRT"), std::string::npos) << r.reason;
  ASSERT_TRUE(shadow_->WaitUntilPassive(10 * kSec).has_value());
  // Past the moment a crash-soon build would have died again.
  usleep(300'000);
  StopClient();
  EXPECT_EQ(wrong_, 0);
  EXPECT_EQ(host_->state(), runtime::DeviceState::kRunning);
  EXPECT_EQ(host_->driver_info().binary, old);
  EXPECT_EQ(host_->driver_info().version, "1.0");
  EXPECT_EQ(*shadow_->DriverTag(), "blue");
  EXPECT_EQ(host_->stats().restarts, 0u) << "a rollback does not spend the restart budget";
}

TEST_F(UpgradeTest, AnIncompatibleProtocolIsRefusedBeforeTheOldDriverIsTouched) {
  const pid_t pid = host_->driver_pid();
  const size_t recoveries = shadow_->recoveries().size();
  const runtime::UpgradeResult r = Upgrade(Build("old-protocol", UMBRA_OLD_PROTOCOL_DRIVER));
  EXPECT_FALSE(r.upgraded);
  EXPECT_FALSE(r.rolled_back) << "nothing was switched";
  EXPECT_NE(r.reason.find("protocol version 99"), std::string::npos) << r.reason;
  EXPECT_EQ(host_->driver_pid(), pid) << "the old driver was touched";
  EXPECT_EQ(shadow_->recoveries().size(), recoveries);
  EXPECT_EQ(host_->state(), runtime::DeviceState::kRunning);
}

TEST_F(UpgradeTest, OnlyARunningDeviceCanBeUpgradedAndOnlyToAProgramThatExists) {
  auto missing = host_->Upgrade({.binary = (dir_ / "no-such-driver").string()});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
  shadow_.reset();
  host_->Shutdown();
  auto stopped = host_->Upgrade({.binary = Build("faulty-v2")});
  ASSERT_FALSE(stopped.has_value());
  EXPECT_EQ(stopped.error().code, Errc::kUnavailable) << stopped.error().ToString();
}

TEST_F(UpgradeTest, UpgradingBackAndForthLeaksNoDescriptorsProcessesOrMappings) {
  const char* env = std::getenv("UMBRA_UPGRADE_ROUNDS");
  const int rounds = env ? std::atoi(env) : 100;
  const std::string a = Build("faulty-v2");
  const std::string b = Build("faulty-v1");
  // One round first, so that both builds' standbys have come and gone.
  ASSERT_TRUE(Upgrade(a, kMs).upgraded);
  ASSERT_TRUE(Upgrade(b, kMs).upgraded);
  usleep(200'000);  // the standby spawned after the last upgrade is up
  const size_t fds = CountEntries("/proc/self/fd");
  const size_t children = CountChildren();
  const size_t maps = CountLines("/proc/self/maps");
  for (int i = 0; i < rounds; ++i) {
    ASSERT_TRUE(Upgrade(i % 2 ? b : a, kMs).upgraded) << "round " << i;
  }
  ASSERT_TRUE(Upgrade(b, kMs).upgraded);
  // Replaced drivers are killed at once and reaped when their exit is seen,
  // which a busy machine may put off: wait (bounded) for the count to settle.
  const int64_t until = MonotonicNanos() + 10 * kSec;
  while ((CountEntries("/proc/self/fd") != fds || CountChildren() != children) && MonotonicNanos() < until) {
    usleep(10'000);
  }
  EXPECT_EQ(CountEntries("/proc/self/fd"), fds);
  EXPECT_EQ(CountChildren(), children);
  EXPECT_LE(CountLines("/proc/self/maps"), maps + 4);
  EXPECT_EQ(*shadow_->DriverTag(), "blue");
}

}  // namespace
}  // namespace umbra::shadows::echo
