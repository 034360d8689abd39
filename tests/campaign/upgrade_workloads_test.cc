// A live update under every class's workload: while the class's own
// application runs (a checksummed file transfer over the NIC, the disk
// verifier, audio playback compared with its source, a serial echo stream),
// its driver is replaced by a new build through the shadow. The workload's
// own end-to-end check must pass and no operation may fail.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "campaign/action_context.h"

namespace umbra::faultinject::campaign {
namespace {

namespace fs = std::filesystem;

class UpgradeUnderLoad : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("umbra-upgrade-load." + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

TEST_P(UpgradeUnderLoad, TheApplicationSeesNoFailureAndItsCheckPasses) {
  WorkloadRegistry registry;
  ASSERT_TRUE(RegisterBuiltinWorkloads(registry).has_value());
  auto workload = registry.Create(GetParam());
  ASSERT_TRUE(workload.has_value()) << workload.error().message;
  // Long enough that the application is busy before, during and after.
  std::string build;
  ActionContext ctx(10 * (*workload)->default_units(), [&](runtime::DriverHost& host) {
    // A new build: a copy of the serving driver's binary.
    const fs::path binary = host.driver_info().binary;
    build = (dir_ / (binary.filename().string() + "-new")).string();
    fs::copy_file(binary, build, fs::copy_options::overwrite_existing);
    return host.Upgrade({.binary = build, .probation_ns = 100'000'000});
  });
  ASSERT_TRUE((*workload)->SetUp(ctx).has_value());
  const WorkResult work = (*workload)->Run(ctx);
  auto outcome = ctx.Outcome();
  const std::string serving = ctx.host() ? ctx.host()->driver_info().binary : "";
  (*workload)->TearDown();
  ctx.supervisor().Stop();

  ASSERT_TRUE(outcome.has_value()) << outcome.error().message;
  EXPECT_TRUE(outcome->upgraded) << outcome->reason;
  EXPECT_EQ(serving, build);
  EXPECT_EQ(work.errors, 0u) << work.first_error;
  EXPECT_TRUE(work.verified) << work.verification;
  EXPECT_EQ(work.units_done, ctx.units());
}

INSTANTIATE_TEST_SUITE_P(EveryClass, UpgradeUnderLoad,
                         ::testing::Values("file-transfer", "disk-verifier", "audio-playback", "uart-echo"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::erase(name, '-');
                           return name;
                         });

}  // namespace
}  // namespace umbra::faultinject::campaign
