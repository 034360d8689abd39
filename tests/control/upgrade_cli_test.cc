// `umbra upgrade` against a running `umbra run`, as a person would: a new
// build of the disk driver takes over (and `umbra status` names it), a build
// that speaks another protocol is refused, and a path that does not exist is
// an error; the machine keeps every device bound throughout.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/control/running_machine.h"

namespace umbra::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kMachine = R"pb(
name: "upg"
buses { name: "platform" }
devices {
  name: "disk0" bus: "platform" compatible: "umbra,disk-emu" device_class: "block"
  settings { key: "blocks" value: "256" }
}
drivers { name: "disk" bus: "platform" compatible: "umbra,disk-emu" binary: "umbra-driver-disk" }
)pb";

class UpgradeCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("umbra-upgrade-cli-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "upg.textproto") << kMachine;
    machine_ = std::make_unique<RunningMachine>((dir_ / "run").string());
    ASSERT_TRUE(machine_->Start((dir_ / "upg.textproto").string())) << machine_->output();
  }
  void TearDown() override {
    machine_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  Output Umbra(const std::string& args) {
    return Shell(std::string(UMBRA_BIN) + " " + args + " --run-dir " + (dir_ / "run").string());
  }
  std::string Copy(const char* from, const std::string& name) {
    const fs::path to = dir_ / name;
    fs::copy_file(from, to, fs::copy_options::overwrite_existing);
    return to.string();
  }

  fs::path dir_;
  std::unique_ptr<RunningMachine> machine_;
};

TEST_F(UpgradeCliTest, ANewBuildTakesOverAndStatusNamesIt) {
  const std::string build = Copy(UMBRA_DISK_DRIVER, "umbra-driver-disk-next");
  const Output up = Umbra("upgrade disk0 --binary " + build + " --probation 200");
  ASSERT_EQ(up.code, 0) << up.out;
  EXPECT_NE(up.out.find("disk0: upgraded to " + build), std::string::npos) << up.out;
  const Output status = Umbra("status --json");
  ASSERT_EQ(status.code, 0) << status.out;
  EXPECT_NE(status.out.find("\"driver_binary\":\"" + build + "\""), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("\"state\":\"bound\""), std::string::npos) << status.out;
  EXPECT_TRUE(machine_->WaitFor("upgraded to " + build, 5s)) << machine_->output();
}

TEST_F(UpgradeCliTest, AnIncompatibleBuildIsRefusedAndTheOldDriverServes) {
  const Output before = Umbra("status --json");
  const std::string build = Copy(UMBRA_OLD_PROTOCOL_DRIVER, "umbra-driver-disk-old-protocol");
  const Output up = Umbra("upgrade disk0 --binary " + build);
  EXPECT_EQ(up.code, 1) << up.out;
  EXPECT_NE(up.out.find("not upgraded"), std::string::npos) << up.out;
  EXPECT_NE(up.out.find("protocol version 99"), std::string::npos) << up.out;
  const Output after = Umbra("status --json");
  EXPECT_NE(after.out.find("\"driver_binary\":\"" UMBRA_DISK_DRIVER "\""), std::string::npos)
      << "the old binary should still serve:\n"
      << after.out;
  EXPECT_NE(after.out.find("\"state\":\"bound\""), std::string::npos) << after.out;
}

TEST_F(UpgradeCliTest, NonsenseIsRefusedWithAReason) {
  const Output missing = Umbra("upgrade disk0 --binary " + (dir_ / "no-such-driver").string());
  EXPECT_EQ(missing.code, 65) << missing.out;
  EXPECT_NE(missing.out.find("no-such-driver"), std::string::npos) << missing.out;
  const Output unknown = Umbra("upgrade disk9 --binary " + Copy(UMBRA_DISK_DRIVER, "d"));
  EXPECT_EQ(unknown.code, 65) << unknown.out;
  EXPECT_NE(unknown.out.find("no device \"disk9\""), std::string::npos) << unknown.out;
}

}  // namespace
}  // namespace umbra::testing
