// A live update under every class's workload: while the class's own
// application runs (a checksummed file transfer over the NIC, the disk
// verifier, audio playback compared with its source, a serial echo stream),
// its driver is replaced by a new build through the shadow. The workload's
// own end-to-end check must pass and no operation may fail.
#include <unistd.h>

#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "faultinject/campaign/workload.h"
#include "runtime/supervisor/supervisor.h"

namespace umbra::faultinject::campaign {
namespace {

namespace fs = std::filesystem;

// Runs a workload on warm-standby drivers and upgrades the first device's
// driver to a copy of its binary a third of the way through, from a thread
// of its own so that the application keeps going meanwhile.
class UpgradeContext : public WorkloadContext {
 public:
  explicit UpgradeContext(fs::path dir, uint64_t units) : dir_(std::move(dir)), units_(units) {}
  ~UpgradeContext() override {
    if (upgrade_.valid()) upgrade_.wait();
  }

  shadows::RecoveryMode mode() const override { return shadows::RecoveryMode::kShadow; }
  uint64_t seed() const override { return 1234; }
  uint64_t units() const override { return units_; }
  Result<runtime::DriverHost*> AddDevice(runtime::DriverHostOptions o) override {
    o.warm_standby = true;
    auto host = sup_.AddDevice(std::move(o));
    if (host) hosts_.push_back(*host);
    return host;
  }
  void Watch(shadows::Shadow& shadow) override { shadows_.push_back(&shadow); }
  void Progress(uint64_t done) override {
    if (done < units_ / 3 || hosts_.empty() || upgrade_.valid()) return;
    runtime::DriverHost* host = hosts_.front();
    const fs::path build = dir_ / (fs::path(host->driver_info().binary).filename().string() + "-new");
    fs::copy_file(host->driver_info().binary, build, fs::copy_options::overwrite_existing);
    new_binary_ = build.string();
    upgrade_ = std::async(std::launch::async, [host, build] {
      return host->Upgrade({.binary = build.string(), .probation_ns = 100'000'000});
    });
  }

  Result<runtime::UpgradeResult> Outcome() {
    if (!upgrade_.valid()) return Fail(Errc::kNotFound, "no upgrade was started");
    return upgrade_.get();
  }
  runtime::DriverHost* host() const { return hosts_.empty() ? nullptr : hosts_.front(); }
  const std::string& new_binary() const { return new_binary_; }
  runtime::Supervisor& supervisor() { return sup_; }

 private:
  fs::path dir_;
  uint64_t units_;
  runtime::Supervisor sup_;
  std::vector<runtime::DriverHost*> hosts_;
  std::vector<shadows::Shadow*> shadows_;
  std::future<Result<runtime::UpgradeResult>> upgrade_;
  std::string new_binary_;
};

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
  UpgradeContext ctx(dir_, 10 * (*workload)->default_units());
  ASSERT_TRUE((*workload)->SetUp(ctx).has_value());
  const WorkResult work = (*workload)->Run(ctx);
  auto outcome = ctx.Outcome();
  const std::string serving = ctx.host() ? ctx.host()->driver_info().binary : "";
  (*workload)->TearDown();
  ctx.supervisor().Stop();

  ASSERT_TRUE(outcome.has_value()) << outcome.error().message;
  EXPECT_TRUE(outcome->upgraded) << outcome->reason;
  EXPECT_EQ(serving, ctx.new_binary());
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
