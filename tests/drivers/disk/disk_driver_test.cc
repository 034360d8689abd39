// The sample disk driver linked in-process against the emulated disk: probe,
// identify, every operation, error mapping, hot-unplug, and the class calls.
#include "drivers/disk/disk_driver.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <string>
#include <vector>
#include <filesystem>
#include <memory>

#include <gtest/gtest.h>

#include "drivers/sdk/in_process.h"
#include "base/clock.h"
#include "runtime/hw/disk/disk_device.h"

namespace umbra::drivers::disk {
namespace {

namespace hwd = hw::disk;

class DiskDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/umbra-disk-driver-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    hwd::DiskOptions o;
    o.name = "dd" + std::to_string(::getpid());
    o.image_path = dir_ + "/d.img";
    o.capacity_blocks = 1024;
    o.cache_bytes = 1 << 20;
    disk_ = *hwd::DiskDevice::Create(std::move(o));
    disk_->Start();
    ASSERT_TRUE(Reprobe(false, "").has_value());
  }
  void TearDown() override {
    if (disk_) disk_->MapHostMemory({});
    run_.reset();
    disk_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A new driver instance on the (reset) disk, optionally with the runner's
  // pool mapped for the device (as DriverHost maps its data pool).
  Result<void> Reprobe(bool map_pool, std::string payloads) {
    run_.reset();
    disk_->MapHostMemory({});
    disk_->Reset();
    const hw::Resources res = disk_->resources();
    sdk::InProcessRunner::Options ro;
    ro.pool_bytes = 1 << 20;
    ro.device.name = "disk0";
    ro.device.settings["queue_depth"] = "16";
    if (!payloads.empty()) ro.device.settings["payloads"] = payloads;
    ro.hw = sdk::HwView{.registers = reinterpret_cast<std::byte*>(disk_->registers()),
                        .registers_size = hwd::kRegisterWindowSize,
                        .dma = disk_->dma().data(),
                        .dma_size = disk_->dma().size()};
    ro.hw_doorbell_fd = res.doorbell_fd;
    ro.hw_interrupt_fd = res.interrupt_fd;
    auto driver = std::make_unique<DiskDriver>();
    driver_ = driver.get();
    run_ = std::make_unique<sdk::InProcessRunner>(std::move(driver), ro);
    if (map_pool) disk_->MapHostMemory({run_->pool(), run_->pool_size()});
    return run_->Probe();
  }
  // Whether `bytes` appear anywhere in the device's DMA pool.
  bool InDmaPool(std::span<const std::byte> bytes) const {
    const std::span<std::byte> dma = disk_->dma();
    return std::search(dma.begin(), dma.end(), bytes.begin(), bytes.end()) != dma.end();
  }

  // Submits one request and waits for its completion.
  ipc::Descriptor Do(uint16_t op, uint64_t lba, uint32_t offset, uint32_t length) {
    run_->completions().clear();
    run_->Submit(ipc::Descriptor{.id = ++id_, .op = op, .offset = offset, .length = length, .arg = lba});
    const int64_t deadline = MonotonicNanos() + 5'000'000'000;
    while (run_->completions().empty() && MonotonicNanos() < deadline) run_->PollInterrupt();
    EXPECT_EQ(run_->completions().size(), 1u);
    return run_->completions().empty() ? ipc::Descriptor{} : run_->completions().front();
  }

  std::string dir_;
  std::unique_ptr<hwd::DiskDevice> disk_;
  std::unique_ptr<sdk::InProcessRunner> run_;
  DiskDriver* driver_ = nullptr;  // owned by run_
  uint64_t id_ = 0;
};

TEST_F(DiskDriverTest, ProbeIdentifiesTheDisk) {
  const block::Geometry& g = driver_->geometry();
  EXPECT_EQ(g.capacity_blocks, 1024u);
  EXPECT_EQ(g.block_size, 4096u);
  EXPECT_TRUE(g.write_cache);
  EXPECT_EQ(g.max_queue_depth, 16u);
  EXPECT_GE(g.max_io_bytes, 64u * 1024);
  auto reply = run_->Call(block::kIdentify, "");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(block::DecodeGeometry(*reply), g);
}

TEST_F(DiskDriverTest, WriteReadFlushFuaDiscard) {
  std::byte* pool = run_->pool();
  for (int i = 0; i < 8192; ++i) pool[i] = std::byte(i * 7);
  EXPECT_EQ(Do(block::kWrite, 5, 0, 8192).status, 0);
  EXPECT_TRUE(disk_->IsCached(5));
  EXPECT_EQ(Do(block::kRead, 5, 65536, 8192).status, 0);
  EXPECT_EQ(std::memcmp(pool, pool + 65536, 8192), 0);
  EXPECT_EQ(Do(block::kFlush, 0, 0, 0).status, 0);
  EXPECT_FALSE(disk_->IsCached(5));
  EXPECT_EQ(Do(block::kWriteFua, 9, 0, 4096).status, 0);
  EXPECT_FALSE(disk_->IsCached(9));
  EXPECT_EQ(Do(block::kDiscard, 5, 0, 4096).status, 0);
  auto zeros = *disk_->ReadCurrent(5, 1);
  EXPECT_TRUE(std::all_of(zeros.begin(), zeros.end(), [](std::byte b) { return b == std::byte{0}; }));
}

TEST_F(DiskDriverTest, BadRequestsAreRefusedBeforeTheDevice) {
  EXPECT_EQ(Do(block::kRead, 1024, 0, 4096).status, static_cast<int32_t>(Errc::kInvalidArgument));
  EXPECT_EQ(Do(block::kRead, 0, 0, 100).status, static_cast<int32_t>(Errc::kInvalidArgument));
  EXPECT_EQ(Do(block::kWrite, 0, (1 << 20) - 100, 4096).status, static_cast<int32_t>(Errc::kInvalidArgument));
  EXPECT_EQ(Do(99, 0, 0, 4096).status, static_cast<int32_t>(Errc::kInvalidArgument));
  EXPECT_EQ(disk_->faults(), 0u) << "nothing bad reached the device";
}

TEST_F(DiskDriverTest, WriteCacheAndQueueDepthCalls) {
  ASSERT_TRUE(run_->Call(block::kSetWriteCache, "0").has_value());
  EXPECT_EQ(disk_->registers()->status.load() & hwd::kStatusCacheOn, 0u);
  EXPECT_EQ(Do(block::kWrite, 3, 0, 4096).status, 0);
  EXPECT_FALSE(disk_->IsCached(3)) << "written through";
  EXPECT_FALSE(run_->Call(block::kSetWriteCache, "maybe").has_value());
  ASSERT_TRUE(run_->Call(block::kSetQueueDepth, "2").has_value());
  EXPECT_FALSE(run_->Call(block::kSetQueueDepth, "17").has_value());
  // Many requests through a depth of 2: they wait in the driver, in order.
  run_->completions().clear();
  for (uint32_t i = 0; i < 12; ++i) {
    run_->Submit(ipc::Descriptor{.id = 100 + i, .op = block::kRead, .offset = i * 4096, .length = 4096, .arg = i});
  }
  const int64_t deadline = MonotonicNanos() + 5'000'000'000;
  while (run_->completions().size() < 12 && MonotonicNanos() < deadline) run_->PollInterrupt();
  ASSERT_EQ(run_->completions().size(), 12u);
  for (const auto& c : run_->completions()) EXPECT_EQ(c.status, 0);
}

TEST_F(DiskDriverTest, PollReapsWithoutTheInterruptAndLeavesItForOnInterrupt) {
  hwd::DiskRegisters* regs = disk_->registers();
  const uint32_t posted = regs->cq_tail.load();
  run_->completions().clear();
  run_->Submit(ipc::Descriptor{.id = ++id_, .op = block::kWrite, .offset = 0, .length = 4096, .arg = 3});
  const int64_t deadline = MonotonicNanos() + 5'000'000'000;
  while (regs->cq_tail.load() == posted && MonotonicNanos() < deadline) usleep(50);
  ASSERT_NE(regs->cq_tail.load(), posted) << "the device never completed the write";
  EXPECT_FALSE(driver_->Counters().at("polls"));
  EXPECT_TRUE(driver_->Poll(*run_));
  ASSERT_EQ(run_->completions().size(), 1u);
  EXPECT_EQ(run_->completions().front().id, id_);
  EXPECT_EQ(run_->completions().front().status, 0);
  EXPECT_FALSE(driver_->Poll(*run_)) << "nothing more was posted";
  EXPECT_EQ(driver_->Counters().at("polls"), 1u);
  // Not acknowledged: the device keeps the cause set (and stays quiet) until
  // the interrupt handler runs.
  EXPECT_NE(regs->int_cause.load() & hwd::kIntCompletion, 0u);
  const uint64_t interrupts = driver_->Counters().at("interrupts");
  EXPECT_TRUE(run_->PollInterrupt());
  EXPECT_EQ(driver_->Counters().at("interrupts"), interrupts + 1);
  EXPECT_EQ(regs->int_cause.load() & hwd::kIntCompletion, 0u);
  EXPECT_EQ(run_->completions().size(), 1u) << "the handler found nothing left to reap";
}

TEST_F(DiskDriverTest, PayloadsStayInThePoolWhenTheDeviceCanReachIt) {
  std::vector<std::byte> block(4096);
  for (size_t i = 0; i < block.size(); ++i) block[i] = std::byte(static_cast<uint8_t>(i * 7 + 13));
  for (const bool map : {true, false}) {
    SCOPED_TRACE(map ? "pool mapped: in place" : "pool not mapped: bounce buffers");
    ASSERT_TRUE(Reprobe(map, "").has_value());
    std::memset(disk_->dma().data() + 4096, 0, disk_->dma().size() - 4096);  // past the queues
    std::memcpy(run_->pool(), block.data(), block.size());
    EXPECT_EQ(Do(block::kWrite, 5, 0, 4096).status, 0);
    EXPECT_EQ(Do(block::kRead, 5, 8192, 4096).status, 0);
    EXPECT_EQ(std::memcmp(run_->pool() + 8192, block.data(), block.size()), 0);
    EXPECT_EQ(InDmaPool(block), !map) << "the payload went through the DMA pool: " << InDmaPool(block);
  }
  // Asked for bounce buffers, it uses them though the device could reach the pool.
  ASSERT_TRUE(Reprobe(true, "bounce").has_value());
  std::memset(disk_->dma().data() + 4096, 0, disk_->dma().size() - 4096);
  std::memcpy(run_->pool(), block.data(), block.size());
  EXPECT_EQ(Do(block::kWrite, 6, 0, 4096).status, 0);
  EXPECT_TRUE(InDmaPool(block));
  auto bad = Reprobe(true, "sideways");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("payloads 'sideways'"), std::string::npos) << bad.error().message;
}

TEST_F(DiskDriverTest, HotUnplugCompletesWithNoDevice) {
  disk_->Unplug(hwd::UnplugMode::kSurprise);
  EXPECT_EQ(Do(block::kRead, 0, 0, 4096).status, static_cast<int32_t>(Errc::kNoDevice));
  EXPECT_EQ(Do(block::kFlush, 0, 0, 0).status, static_cast<int32_t>(Errc::kNoDevice));
}

}  // namespace
}  // namespace umbra::drivers::disk
