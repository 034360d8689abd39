// The block class records its requests: reads, writes and flushes with their
// sizes and latencies, and a crash between them gives the analysis a gap.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <variant>

#include <gtest/gtest.h>

#include "recorder/analysis.h"
#include "recorder/recorder.h"
#include "recorder/trace_file.h"
#include "base/clock.h"
#include "runtime/hw/disk/disk_device.h"
#include "runtime/supervisor/supervisor.h"
#include "shadows/block/block_shadow.h"

namespace umbra::shadows::block {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;
using recorder::RequestOp;

// Members in destruction order: the shadow stops the driver before the
// supervisor goes, the recorder closes after both, the disk last.
class BlockRecordingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/umbra-block-recording-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    auto r = recorder::Recorder::Create({.path = dir_ + "/run.trace"});
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    rec_ = std::move(*r);
    hw::disk::DiskOptions d;
    d.name = "disk-rec" + std::to_string(::getpid());
    d.image_path = dir_ + "/disk0.img";
    d.capacity_blocks = 1024;
    d.block_size = 4096;
    d.cache_bytes = 1 << 20;
    disk_ = *hw::disk::DiskDevice::Create(std::move(d));
    disk_->Start();
    runtime::DriverHostOptions o;
    o.device_name = "disk0";
    o.device_class = "block";
    o.compatible = hw::disk::kCompatible;
    o.driver_binary = UMBRA_DISK_DRIVER;
    o.heartbeat_period_ns = 20 * kMs;
    o.data = {.ring_entries = 64, .buffer_size = 64 << 10, .buffer_count = 128};
    o.restart.budget = 1000;
    o.restart.backoff_initial_ns = 0;
    o.hw = disk_.get();
    o.recorder = rec_.get();
    host_ = *sup_.AddDevice(std::move(o));
    shadow_ = *BlockShadow::Create(*host_, {});
    shadow_->Start();
    ASSERT_TRUE(shadow_->WaitUntilPassive(10 * kSec).has_value());
  }
  void TearDown() override {
    shadow_.reset();
    sup_.Stop();
    if (rec_) (void)rec_->Close();
    disk_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  recorder::Trace StopAndRead() {
    shadow_.reset();
    sup_.Stop();
    EXPECT_TRUE(rec_->Close().has_value());
    auto t = recorder::ReadTrace(dir_ + "/run.trace");
    EXPECT_TRUE(t.has_value());
    return std::move(*t);
  }

  std::string dir_;
  std::unique_ptr<recorder::Recorder> rec_;
  std::unique_ptr<hw::disk::DiskDevice> disk_;
  runtime::Supervisor sup_;
  runtime::DriverHost* host_ = nullptr;
  std::unique_ptr<BlockShadow> shadow_;
};

TEST_F(BlockRecordingTest, ReadsWritesAndFlushesAreRecordedWithSizes) {
  std::vector<std::byte> data(2 * 4096, std::byte{0x5A});
  for (uint64_t lba = 0; lba < 10; ++lba) ASSERT_TRUE(shadow_->Write(lba * 2, data).has_value());
  ASSERT_TRUE(shadow_->Flush().has_value());
  std::vector<std::byte> back(data.size());
  for (uint64_t lba = 0; lba < 5; ++lba) ASSERT_TRUE(shadow_->Read(lba * 2, back).has_value());
  recorder::Trace trace = StopAndRead();
  uint64_t writes = 0, reads = 0, flushes = 0, write_bytes = 0, submitted = 0;
  for (const recorder::Event& e : trace.events) {
    if (std::holds_alternative<recorder::RequestSubmitted>(e.body)) ++submitted;
    const auto* c = std::get_if<recorder::RequestCompleted>(&e.body);
    if (c == nullptr) continue;
    EXPECT_EQ(c->outcome, recorder::RequestOutcome::kOk);
    EXPECT_GE(c->latency_ns, 0);
    if (c->op == RequestOp::kWrite) {
      ++writes;
      write_bytes += c->size;
    }
    reads += c->op == RequestOp::kRead;
    flushes += c->op == RequestOp::kFlush;
  }
  EXPECT_EQ(writes, 10u);
  EXPECT_EQ(write_bytes, 10u * data.size());
  EXPECT_EQ(reads, 5u);
  EXPECT_EQ(flushes, 1u);
  EXPECT_EQ(submitted, 16u);
}

TEST_F(BlockRecordingTest, ACrashBetweenWritesGivesTheDiskAGap) {
  std::vector<std::byte> data(4096, std::byte{0x11});
  for (uint64_t lba = 0; lba < 5; ++lba) ASSERT_TRUE(shadow_->Write(lba, data).has_value());
  const size_t before = shadow_->recoveries().size();
  host_->Kill(SIGKILL);
  const int64_t deadline = MonotonicNanos() + 10 * kSec;
  while (shadow_->recoveries().size() == before && MonotonicNanos() < deadline) usleep(50);
  ASSERT_TRUE(shadow_->WaitUntilPassive(10 * kSec).has_value());
  for (uint64_t lba = 5; lba < 10; ++lba) ASSERT_TRUE(shadow_->Write(lba, data).has_value());
  recorder::Trace trace = StopAndRead();
  auto report = recorder::Analyze(trace);
  ASSERT_TRUE(report.has_value());
  ASSERT_EQ(report->faults.size(), 1u);
  const recorder::FaultRecord& f = report->faults[0];
  EXPECT_EQ(f.device_class, "block");
  EXPECT_EQ(f.fault_type, "signal 9");
  EXPECT_EQ(f.end, recorder::FaultEnd::kRecovered);
  ASSERT_TRUE(f.gap_ns.has_value());
  EXPECT_GT(*f.gap_ns, 0);
}

}  // namespace
}  // namespace umbra::shadows::block
