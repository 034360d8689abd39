#include "runtime/hw/disk/disk_device.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <csignal>
#include <set>
#include <thread>

#include "base/clock.h"
#include "runtime/ipc/shared_memory.h"
#include "tests/runtime/hw/disk/disk_fixture.h"

namespace umbra::hw::disk {
namespace {

using DiskDeviceTest = DiskFixture;

TEST_F(DiskDeviceTest, CreateRejectsBadOptions) {
  DiskOptions o = Options();
  o.block_size = 1000;
  EXPECT_EQ(DiskDevice::Create(o).error().code, Errc::kInvalidArgument);
  o = Options();
  o.capacity_blocks = 0;  // the image does not exist yet
  EXPECT_EQ(DiskDevice::Create(o).error().code, Errc::kNotFound);
  o = Options();
  o.max_queue_depth = 48;
  EXPECT_EQ(DiskDevice::Create(o).error().code, Errc::kInvalidArgument);
  o = Options();
  ASSERT_TRUE(DiskDevice::Create(o).has_value());
  o.capacity_blocks = 2048;  // exists now, with 1024 blocks
  EXPECT_EQ(DiskDevice::Create(o).error().code, Errc::kInvalidArgument);
}

TEST_F(DiskDeviceTest, SecondDiskOnTheSameImageIsRefused) {
  StartDisk(Options());
  DiskOptions o = Options();
  o.name = "disk1";
  EXPECT_EQ(DiskDevice::Create(o).error().code, Errc::kBusy);
  disk_.reset();
  EXPECT_TRUE(DiskDevice::Create(o).has_value());  // free again once the first is gone
}

TEST_F(DiskDeviceTest, ResourcesDescribeRegistersThenDmaPool) {
  StartDisk(Options());
  const Resources r = disk_->resources();
  EXPECT_EQ(r.registers_offset, 0u);
  EXPECT_EQ(r.registers_size, kRegisterWindowSize);
  EXPECT_EQ(r.dma_offset, kDmaPoolOffset);
  EXPECT_EQ(r.dma_size, uint64_t{2} << 20);
  EXPECT_GE(r.region_size, r.dma_offset + r.dma_size);
  EXPECT_GE(r.doorbell_fd, 0);
  EXPECT_GE(r.interrupt_fd, 0);
  EXPECT_EQ(disk_->compatible(), "umbra,disk-emu");
}

class DiskGeometryTest : public DiskFixture, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(DiskGeometryTest, IdentifyAndRegistersReportGeometry) {
  DiskOptions o = Options();
  o.block_size = GetParam();
  o.capacity_blocks = 3000;
  StartDisk(o);
  DiskRegisters* regs = disk_->registers();
  EXPECT_EQ(regs->magic.load(), kMagic);
  EXPECT_EQ(regs->capacity_blocks.load(), 3000u);
  EXPECT_EQ(regs->block_size.load(), GetParam());
  EXPECT_EQ(regs->max_transfer_blocks.load(), (1u << 20) / GetParam());
  EXPECT_NE(regs->status.load() & kStatusCacheOn, 0u);
  EXPECT_EQ(std::filesystem::file_size(o.image_path), 3000u * GetParam());

  const uint64_t at = driver_->DataOffset(0);
  ASSERT_EQ(driver_->Run(TestDriver::Io(Opcode::kIdentify, 1, 0, 0, at, 4096)), Status::kOk);
  DiskIdentify id;
  std::memcpy(&id, driver_->Buffer(at), sizeof id);
  EXPECT_EQ(id.magic, kMagic);
  EXPECT_EQ(id.capacity_blocks, 3000u);
  EXPECT_EQ(id.block_size, GetParam());
  EXPECT_EQ(id.tag_limit, 1024u);
  EXPECT_EQ(id.write_cache_enabled, 1u);
  EXPECT_EQ(id.features & (kFeatureWriteCache | kFeatureFua | kFeatureDiscard),
            kFeatureWriteCache | kFeatureFua | kFeatureDiscard);
  EXPECT_STREQ(id.serial, "disk0");
  EXPECT_EQ(disk_->counters().identifies, 1u);

  // The data path works in units of this block size.
  ASSERT_EQ(Write(2997, 3, 5), Status::kOk);
  EXPECT_EQ(Read(2997, 3), Pattern(2997, 3, 5));
  ASSERT_EQ(Flush(), Status::kOk);
  EXPECT_EQ(Durable(2997, 3), Pattern(2997, 3, 5));
  EXPECT_EQ(Write(2998, 3, 5), Status::kLbaOutOfRange);
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, DiskGeometryTest, ::testing::Values(512u, 4096u));

TEST_F(DiskDeviceTest, WriteThenReadReturnsTheData) {
  StartDisk(Options());
  ASSERT_EQ(Write(10, 4, 1), Status::kOk);
  EXPECT_EQ(Read(10, 4), Pattern(10, 4, 1));
  EXPECT_EQ(Read(11, 2), Pattern(11, 2, 1));
  const DiskCounters c = disk_->counters();
  EXPECT_EQ(c.writes, 1u);
  EXPECT_EQ(c.reads, 2u);
  EXPECT_EQ(c.bytes_written, 4u * 4096);
  EXPECT_EQ(c.bytes_read, 6u * 4096);
  EXPECT_EQ(disk_->faults(), 0u);
}

TEST_F(DiskDeviceTest, CachedWriteIsLostOnReset) {
  StartDisk(Options());
  ASSERT_EQ(Write(5, 1, 1, Opcode::kWriteFua), Status::kOk);
  ASSERT_EQ(Write(5, 1, 2), Status::kOk);
  EXPECT_TRUE(disk_->IsCached(5));
  EXPECT_EQ(disk_->cached_blocks(), 1u);
  EXPECT_EQ(Durable(5, 1), Pattern(5, 1, 1));  // only generation 1 is on the image
  EXPECT_EQ(*disk_->ReadCurrent(5, 1), Pattern(5, 1, 2));
  ResetAndReprogram();
  EXPECT_FALSE(disk_->IsCached(5));
  EXPECT_EQ(Read(5, 1), Pattern(5, 1, 1));  // the old data: the write was never flushed
}

TEST_F(DiskDeviceTest, FlushMakesWritesDurable) {
  StartDisk(Options());
  ASSERT_EQ(Write(5, 3, 2), Status::kOk);
  ASSERT_EQ(Flush(), Status::kOk);
  EXPECT_EQ(disk_->cached_blocks(), 0u);
  EXPECT_EQ(Durable(5, 3), Pattern(5, 3, 2));
  ResetAndReprogram();
  EXPECT_EQ(Read(5, 3), Pattern(5, 3, 2));
  EXPECT_EQ(disk_->counters().flushes, 1u);
  EXPECT_EQ(disk_->counters().writeback_blocks, 3u);
}

TEST_F(DiskDeviceTest, FuaWriteSurvivesResetAndUpdatesCachedCopy) {
  StartDisk(Options());
  ASSERT_EQ(Write(6, 2, 1), Status::kOk);                     // cached
  ASSERT_EQ(Write(7, 1, 2, Opcode::kWriteFua), Status::kOk);  // overlaps block 7
  EXPECT_EQ(Durable(7, 1), Pattern(7, 1, 2));
  EXPECT_EQ(Read(7, 1), Pattern(7, 1, 2));  // the cached copy does not shadow the FUA data
  ResetAndReprogram();
  EXPECT_EQ(Read(6, 1), Zeros(1));  // the plain write was lost
  EXPECT_EQ(Read(7, 1), Pattern(7, 1, 2));
}

TEST_F(DiskDeviceTest, FlushCoversWritesBeforeItNotAfter) {
  StartDisk(Options());
  // One batch: W(1) W(2) FLUSH W(3). The flush makes 1 and 2 durable; 3 was
  // submitted after it and stays volatile.
  for (uint32_t i = 0; i < 3; ++i) Fill(i, 1 + i, 1, 9);
  driver_->Submit(TestDriver::Io(Opcode::kWrite, 1, 1, 1, driver_->DataOffset(0), Bs()), false);
  driver_->Submit(TestDriver::Io(Opcode::kWrite, 2, 2, 1, driver_->DataOffset(1), Bs()), false);
  driver_->Submit(TestDriver::Io(Opcode::kFlush, 3, 0, 0, 0, 0), false);
  driver_->Submit(TestDriver::Io(Opcode::kWrite, 4, 3, 1, driver_->DataOffset(2), Bs()), false);
  driver_->Ring();
  std::vector<DiskCompletion> done;
  ASSERT_TRUE(driver_->WaitFor(4, done, 5 * TestDriver::kSecond));
  for (const auto& c : done) EXPECT_EQ(c.status, static_cast<uint16_t>(Status::kOk));
  EXPECT_EQ(Durable(1, 2), Pattern(1, 2, 9));
  EXPECT_EQ(Durable(3, 1), Zeros(1));
  EXPECT_TRUE(disk_->IsCached(3));
  ResetAndReprogram();
  EXPECT_EQ(Read(1, 2), Pattern(1, 2, 9));
  EXPECT_EQ(Read(3, 1), Zeros(1));
}

TEST_F(DiskDeviceTest, WriteCacheOffWritesThroughAndTurningItOffWritesBack) {
  StartDisk(Options());
  ASSERT_EQ(Write(1, 1, 1), Status::kOk);
  EXPECT_TRUE(disk_->IsCached(1));
  disk_->registers()->write_cache.store(0);
  driver_->Ring();
  ASSERT_TRUE(driver_->WaitStatus(0, kStatusCacheOn, TestDriver::kSecond));
  EXPECT_EQ(disk_->cached_blocks(), 0u);
  EXPECT_EQ(Durable(1, 1), Pattern(1, 1, 1));
  ASSERT_EQ(Write(2, 1, 2), Status::kOk);
  EXPECT_FALSE(disk_->IsCached(2));
  EXPECT_EQ(Durable(2, 1), Pattern(2, 1, 2));
  // Reset brings the power-on value (enabled) back.
  ResetAndReprogram();
  EXPECT_NE(disk_->registers()->status.load() & kStatusCacheOn, 0u);
}

TEST_F(DiskDeviceTest, PowerOnWithoutCache) {
  DiskOptions o = Options();
  o.write_cache_power_on = WriteCachePowerOn::kDisabled;
  StartDisk(o);
  ASSERT_EQ(Write(1, 1, 1), Status::kOk);
  EXPECT_EQ(Durable(1, 1), Pattern(1, 1, 1));
  o = Options();
  o.image_path = dir_ + "/nocache.img";
  o.cache_bytes = 0;
  StartDisk(o);
  EXPECT_EQ(disk_->registers()->features.load() & kFeatureWriteCache, 0u);
  ASSERT_EQ(Write(1, 1, 1), Status::kOk);
  EXPECT_EQ(Durable(1, 1), Pattern(1, 1, 1));
}

TEST_F(DiskDeviceTest, FullCacheIsWrittenBack) {
  DiskOptions o = Options();
  o.cache_bytes = 4 * 4096;
  o.writeback_start_percent = 100;  // no background write-back: only a full cache writes back
  StartDisk(o);
  for (uint32_t i = 0; i < 4; ++i) ASSERT_EQ(Write(100 + i, 1, 3), Status::kOk);
  EXPECT_EQ(disk_->cached_blocks(), 4u);
  EXPECT_EQ(Durable(100, 4), Zeros(4));
  ASSERT_EQ(Write(104, 1, 3), Status::kOk);  // no room: the first four go to the image
  EXPECT_EQ(disk_->counters().evictions, 1u);
  EXPECT_EQ(Durable(100, 4), Pattern(100, 4, 3));
  EXPECT_TRUE(disk_->IsCached(104));
  // Larger than the whole cache: written through.
  ASSERT_EQ(Write(200, 8, 4), Status::kOk);
  EXPECT_EQ(Durable(200, 8), Pattern(200, 8, 4));
  EXPECT_EQ(Read(100, 5), Pattern(100, 5, 3));
}

// Background write-back runs on the hardware thread: the cached blocks once
// they fell to `n` (or what is left after 5 s).
uint64_t CachedBlocksOnceAtMost(const DiskDevice& disk, uint64_t n) {
  const int64_t deadline = MonotonicNanos() + 5'000'000'000;
  while (disk.cached_blocks() > n && MonotonicNanos() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return disk.cached_blocks();
}

TEST_F(DiskDeviceTest, BackgroundWriteBackDestagesTheOldestAndKeepsTheRestVolatile) {
  DiskOptions o = Options();
  o.cache_bytes = 8 * 4096;
  o.writeback_start_percent = 50;
  StartDisk(o);
  for (uint32_t i = 0; i < 6; ++i) ASSERT_EQ(Write(300 + i, 1, 7), Status::kOk);
  // The hardware thread destages between batches until half the cache is dirty.
  EXPECT_EQ(CachedBlocksOnceAtMost(*disk_, 4), 4u);
  EXPECT_EQ(disk_->counters().evictions, 0u);
  EXPECT_GE(disk_->counters().background_writebacks, 1u);
  EXPECT_EQ(Durable(300, 2), Pattern(300, 2, 7));  // the two oldest
  EXPECT_EQ(Durable(302, 4), Zeros(4));            // the newest are only cached
  disk_->Reset();                                  // a power cut loses those, and only those
  EXPECT_EQ(disk_->cached_blocks(), 0u);
  EXPECT_EQ(Durable(300, 2), Pattern(300, 2, 7));
  EXPECT_EQ(Durable(302, 4), Zeros(4));
}

// The image refuses writes past 128 KiB (RLIMIT_FSIZE: EFBIG) while set.
class ImageWritesFailPast128KiB {
 public:
  ImageWritesFailPast128KiB() {
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of the signal
    getrlimit(RLIMIT_FSIZE, &old_);
    rlimit low = old_;
    low.rlim_cur = 128 << 10;
    setrlimit(RLIMIT_FSIZE, &low);
  }
  ~ImageWritesFailPast128KiB() {
    setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_{};
  void (*old_handler_)(int) = nullptr;
};

TEST_F(DiskDeviceTest, AFailedBackgroundWriteBackKeepsTheBlocksAndStopsUntilAFlushWorks) {
  DiskOptions o = Options();
  o.cache_bytes = 8 * 4096;
  o.writeback_start_percent = 50;
  StartDisk(o);  // the image exists at full size before the limit
  {
    ImageWritesFailPast128KiB limit;
    for (uint32_t i = 0; i < 6; ++i) ASSERT_EQ(Write(100 + i, 1, 5), Status::kOk);  // LBA 100: 400 KiB in
    const int64_t deadline = MonotonicNanos() + 2'000'000'000;
    while (disk_->counters().io_errors == 0 && MonotonicNanos() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    EXPECT_EQ(disk_->counters().io_errors, 1u) << "the failed write-back was counted";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(disk_->counters().io_errors, 1u) << "and not retried in a loop";
    EXPECT_EQ(disk_->cached_blocks(), 6u) << "nothing was dropped";
    EXPECT_EQ(disk_->counters().background_writebacks, 0u);
    EXPECT_EQ(Flush(), Status::kIoError) << "a flush reports it";
    EXPECT_EQ(disk_->cached_blocks(), 6u);
  }
  EXPECT_EQ(Flush(), Status::kOk);
  EXPECT_EQ(disk_->cached_blocks(), 0u);
  EXPECT_EQ(Durable(100, 6), Pattern(100, 6, 5));
  // Background write-back works again once a write-back did.
  for (uint32_t i = 0; i < 6; ++i) ASSERT_EQ(Write(200 + i, 1, 6), Status::kOk);
  EXPECT_EQ(CachedBlocksOnceAtMost(*disk_, 4), 4u);
  EXPECT_GE(disk_->counters().background_writebacks, 1u);
}

TEST_F(DiskDeviceTest, IdleWriteBackEmptiesTheCacheWhenTheQueueIsIdle) {
  DiskOptions o = Options();
  o.cache_bytes = 8 * 4096;
  o.idle_writeback = true;
  StartDisk(o);
  for (uint32_t i = 0; i < 3; ++i) ASSERT_EQ(Write(400 + i, 1, 9), Status::kOk);  // below the start mark
  EXPECT_EQ(CachedBlocksOnceAtMost(*disk_, 0), 0u);
  EXPECT_EQ(Durable(400, 3), Pattern(400, 3, 9));
  EXPECT_EQ(Read(400, 3), Pattern(400, 3, 9));
}

TEST_F(DiskDeviceTest, DiscardReadsAsZerosInCacheAndImage) {
  StartDisk(Options());
  ASSERT_EQ(Write(20, 4, 1, Opcode::kWriteFua), Status::kOk);
  ASSERT_EQ(Write(22, 4, 2), Status::kOk);  // 22..25 cached
  ASSERT_EQ(driver_->Run(TestDriver::Io(Opcode::kDiscard, 3, 21, 3, 0, 0)), Status::kOk);
  std::vector<std::byte> expected = Pattern(20, 1, 1);
  auto zeros = Zeros(3);
  expected.insert(expected.end(), zeros.begin(), zeros.end());
  auto tail = Pattern(24, 2, 2);
  expected.insert(expected.end(), tail.begin(), tail.end());
  EXPECT_EQ(Read(20, 6), expected);
  EXPECT_EQ(Durable(21, 3), Zeros(3));
  EXPECT_EQ(disk_->counters().discards, 1u);
}

TEST_F(DiskDeviceTest, HotUnplugFailsEveryCommandAndKeepsTheImage) {
  StartDisk(Options());
  ASSERT_EQ(Write(1, 1, 1), Status::kOk);
  ASSERT_EQ(Flush(), Status::kOk);
  ASSERT_EQ(Write(2, 1, 1), Status::kOk);  // cached only: a surprise removal loses it
  disk_->Unplug(UnplugMode::kSurprise);
  EXPECT_TRUE(disk_->unplugged());
  EXPECT_NE(disk_->registers()->status.load() & kStatusRemoved, 0u);
  EXPECT_NE(disk_->registers()->int_cause.load() & kIntStatus, 0u);
  EXPECT_EQ(Write(3, 1, 5, Opcode::kWriteFua), Status::kNoDevice);
  EXPECT_EQ(Flush(), Status::kNoDevice);
  EXPECT_EQ(driver_->Run(TestDriver::Io(Opcode::kRead, 1, 1, 1, driver_->DataOffset(0), Bs())), Status::kNoDevice);
  EXPECT_EQ(disk_->counters().no_device, 3u);
  EXPECT_EQ(disk_->faults(), 0u);
  EXPECT_EQ(Durable(1, 1), Pattern(1, 1, 1));
  EXPECT_EQ(Durable(2, 2), Zeros(2));
  // Permanent across Reset.
  ResetAndReprogram();
  EXPECT_NE(disk_->registers()->status.load() & kStatusRemoved, 0u);
  EXPECT_EQ(Flush(), Status::kNoDevice);
  EXPECT_EQ(disk_->WriteBackCache().error().code, Errc::kNoDevice);
}

TEST_F(DiskDeviceTest, OrderlyUnplugWritesTheCacheBack) {
  StartDisk(Options());
  ASSERT_EQ(Write(2, 1, 1), Status::kOk);
  disk_->Unplug(UnplugMode::kOrderly);
  EXPECT_EQ(Durable(2, 1), Pattern(2, 1, 1));
  EXPECT_EQ(Write(2, 1, 2), Status::kNoDevice);
  EXPECT_EQ(Durable(2, 1), Pattern(2, 1, 1));
}

class DiskOrderTest : public DiskFixture, public ::testing::WithParamInterface<CompletionOrder> {};

TEST_P(DiskOrderTest, ManyTagsInFlightCompleteOnceEach) {
  DiskOptions o = Options();
  o.completion_order = GetParam();
  o.max_queue_depth = 128;
  o.dma_size = 4 << 20;
  StartDisk(o, 128);
  constexpr uint32_t kCount = 128;
  for (uint32_t i = 0; i < kCount; ++i) Fill(i, 300 + i, 1, 4);
  // Tags are the driver's choice: use sparse ones.
  for (uint32_t i = 0; i < kCount; ++i) {
    driver_->Submit(
        TestDriver::Io(Opcode::kWrite, static_cast<uint16_t>(i * 7 + 3), 300 + i, 1, driver_->DataOffset(i), Bs()),
        false);
  }
  driver_->Ring();
  std::vector<DiskCompletion> done;
  ASSERT_TRUE(driver_->WaitFor(kCount, done, 5 * TestDriver::kSecond));
  ASSERT_EQ(done.size(), kCount);
  std::set<uint16_t> tags;
  bool in_order = true;
  for (size_t i = 0; i < done.size(); ++i) {
    EXPECT_EQ(done[i].status, static_cast<uint16_t>(Status::kOk));
    EXPECT_EQ(done[i].user_data, 0x5EED0000u + done[i].tag);
    tags.insert(done[i].tag);
    if (i > 0 && done[i].tag < done[i - 1].tag) in_order = false;
  }
  EXPECT_EQ(tags.size(), kCount);
  if (GetParam() == CompletionOrder::kSubmission) {
    EXPECT_TRUE(in_order);
  }
  ASSERT_EQ(Flush(), Status::kOk);
  EXPECT_EQ(Durable(300, kCount), Pattern(300, kCount, 4));
}

INSTANTIATE_TEST_SUITE_P(Orders, DiskOrderTest,
                         ::testing::Values(CompletionOrder::kSubmission, CompletionOrder::kReversedPerBatch));

TEST_F(DiskDeviceTest, DuplicateOutstandingTagIsRefusedUntilItsCompletionIsConsumed) {
  StartDisk(Options());
  const uint64_t at = driver_->DataOffset(0);
  driver_->Submit(TestDriver::Io(Opcode::kRead, 5, 0, 1, at, Bs()), false);
  driver_->Submit(TestDriver::Io(Opcode::kRead, 5, 1, 1, at, Bs()), false);
  driver_->Ring();
  // Wait for both completions to be posted without consuming them.
  DiskRegisters* regs = disk_->registers();
  const int64_t deadline = MonotonicNanos() + 5 * TestDriver::kSecond;
  while (regs->cq_tail.load() != 2 && MonotonicNanos() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  // Tag 5 is still outstanding (its completion is unconsumed): refused again.
  driver_->Submit(TestDriver::Io(Opcode::kRead, 5, 2, 1, at, Bs()));
  while (regs->cq_tail.load() != 3 && MonotonicNanos() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  std::vector<DiskCompletion> done;
  ASSERT_TRUE(driver_->WaitFor(3, done, 5 * TestDriver::kSecond));
  EXPECT_EQ(done[0].status, static_cast<uint16_t>(Status::kOk));
  EXPECT_EQ(done[1].status, static_cast<uint16_t>(Status::kDuplicateTag));
  EXPECT_EQ(done[2].status, static_cast<uint16_t>(Status::kDuplicateTag));
  EXPECT_EQ(disk_->faults(), 2u);
  // Consumed now: the tag may be reused.
  EXPECT_EQ(driver_->Run(TestDriver::Io(Opcode::kRead, 5, 3, 1, at, Bs())), Status::kOk);
}

TEST_F(DiskDeviceTest, UnacknowledgedInterruptIsNotSignalledAgain) {
  StartDisk(Options());
  DiskRegisters* regs = disk_->registers();
  const int irq = disk_->resources().interrupt_fd;
  const int64_t deadline = MonotonicNanos() + 5 * TestDriver::kSecond;
  auto wait_posted = [&](uint32_t tail) {
    // cq_tail is stored before the cause is set: wait for both.
    while ((regs->cq_tail.load() != tail || (regs->int_cause.load() & kIntCompletion) == 0) &&
           MonotonicNanos() < deadline) {
      usleep(100);
    }
    usleep(10'000);  // let the device finish raising (or not raising) the interrupt
  };
  auto pending_signals = [&] {
    uint64_t value = 0;
    return ::read(irq, &value, sizeof value) == sizeof value ? value : 0;
  };
  ASSERT_EQ(Flush(), Status::kOk);
  wait_posted(1);
  pending_signals();
  regs->int_cause.store(0);
  // Two completions without acknowledging in between: one signal.
  driver_->Submit(TestDriver::Io(Opcode::kFlush, 1, 0, 0, 0, 0));
  wait_posted(2);
  driver_->Submit(TestDriver::Io(Opcode::kFlush, 2, 0, 0, 0, 0));
  wait_posted(3);
  EXPECT_EQ(pending_signals(), 1u);
  // Masked: no signal at all, but the cause is latched.
  regs->int_mask.store(kIntCompletion);
  regs->int_cause.store(0);
  std::vector<DiskCompletion> done;
  driver_->Reap(done);
  driver_->Submit(TestDriver::Io(Opcode::kFlush, 3, 0, 0, 0, 0));
  wait_posted(4);
  EXPECT_EQ(pending_signals(), 0u);
  EXPECT_NE(regs->int_cause.load() & kIntCompletion, 0u);
}

TEST_F(DiskDeviceTest, IdleDeviceSleepsOnTheDoorbell) {
  StartDisk(Options());
  DiskRegisters* regs = disk_->registers();
  const int64_t deadline = MonotonicNanos() + 5 * TestDriver::kSecond;
  while (regs->doorbell_wanted.load() == 0 && MonotonicNanos() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  EXPECT_EQ(regs->doorbell_wanted.load(), 1u);
  // A doorbell wakes it.
  EXPECT_EQ(Flush(), Status::kOk);
}

TEST_F(DiskDeviceTest, ExistingImageKeepsItsData) {
  StartDisk(Options());
  ASSERT_EQ(Write(9, 2, 6), Status::kOk);
  ASSERT_TRUE(disk_->WriteBackCache().has_value());
  driver_.reset();
  disk_.reset();
  DiskOptions o = Options();
  o.capacity_blocks = 0;  // take the size of the existing image
  StartDisk(o);
  EXPECT_EQ(disk_->capacity_blocks(), 1024u);
  EXPECT_EQ(Read(9, 2), Pattern(9, 2, 6));
}

TEST_F(DiskDeviceTest, FdatasyncModeSyncsOnFlushAndFua) {
  DiskOptions o = Options();
  o.sync = SyncMode::kFdatasync;
  StartDisk(o);
  ASSERT_EQ(Write(1, 1, 1), Status::kOk);
  ASSERT_EQ(Flush(), Status::kOk);
  ASSERT_EQ(Write(2, 1, 1, Opcode::kWriteFua), Status::kOk);
  EXPECT_EQ(disk_->counters().syncs, 2u);
}

TEST_F(DiskDeviceTest, CommandsNamingHostMemoryReadAndWriteItInPlace) {
  StartDisk(Options());
  std::vector<std::byte> host(16 * 4096, std::byte{0});
  const std::vector<std::byte> data = Pattern(7, 1, 3);
  std::memcpy(host.data() + 2 * 4096, data.data(), data.size());
  auto in_host = [](Opcode op, uint16_t tag, uint64_t lba, uint64_t offset) {
    DiskCommand c = TestDriver::Io(op, tag, lba, 1, offset, 4096);
    c.flags = kCommandHostMemory;
    return c;
  };
  // Not mapped yet: the command names memory the device cannot reach.
  EXPECT_EQ(disk_->registers()->host_memory_size.load(), 0u);
  EXPECT_EQ(driver_->Run(in_host(Opcode::kWrite, 1, 7, 2 * 4096)), Status::kInvalidBuffer);

  disk_->MapHostMemory(host);
  EXPECT_EQ(disk_->registers()->host_memory_size.load(), host.size());
  ASSERT_EQ(driver_->Run(in_host(Opcode::kWrite, 2, 7, 2 * 4096)), Status::kOk);
  EXPECT_EQ(*disk_->ReadCurrent(7, 1), data);
  ASSERT_EQ(driver_->Run(in_host(Opcode::kRead, 3, 7, 5 * 4096)), Status::kOk);
  EXPECT_EQ(std::vector<std::byte>(host.begin() + 5 * 4096, host.begin() + 6 * 4096), data);
  // Validated against the mapping like any DMA address.
  EXPECT_EQ(driver_->Run(in_host(Opcode::kRead, 4, 7, host.size() - 4096 + 8)), Status::kInvalidBuffer);
  EXPECT_EQ(driver_->Run(in_host(Opcode::kRead, 5, 7, 4)), Status::kMisaligned);
  // The mapping is the host's: a reset (a new driver) keeps it.
  ResetAndReprogram();
  EXPECT_EQ(disk_->registers()->host_memory_size.load(), host.size());
  EXPECT_EQ(driver_->Run(in_host(Opcode::kRead, 6, 7, 0)), Status::kOk);

  disk_->MapHostMemory({});
  EXPECT_EQ(disk_->registers()->host_memory_size.load(), 0u);
  EXPECT_EQ(driver_->Run(in_host(Opcode::kRead, 7, 7, 0)), Status::kInvalidBuffer);
  EXPECT_EQ(disk_->faults(), 4u);  // the four refused commands
}

TEST_F(DiskDeviceTest, StopAndStartAgainKeepsServing) {
  StartDisk(Options());
  ASSERT_EQ(Write(1, 1, 1), Status::kOk);
  disk_->Stop();
  disk_->Stop();
  disk_->Start();
  EXPECT_EQ(Read(1, 1), Pattern(1, 1, 1));
}

// The driver is another process: it maps the region from the fd in
// resources() and uses only the datasheet and the two eventfds.
TEST_F(DiskDeviceTest, DriverInAnotherProcessProgramsTheDiskThroughItsOwnMapping) {
  StartDisk(Options());
  const Resources r = disk_->resources();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto region = ipc::SharedMemory::Map(UniqueFd(dup(r.region_fd)), r.region_size);
    if (!region) _exit(10);
    auto* regs = (*region)->at<DiskRegisters>(r.registers_offset);
    TestDriver d(regs, {(*region)->data() + r.dma_offset, r.dma_size}, r.doorbell_fd, r.interrupt_fd);
    if (regs->magic.load() != kMagic || !d.Enable(16)) _exit(11);
    const uint64_t at = d.DataOffset(0);
    std::memset(d.Buffer(at), 0xAB, 2 * 4096);
    if (d.Run(TestDriver::Io(Opcode::kWrite, 1, 50, 2, at, 2 * 4096)) != Status::kOk) _exit(12);
    if (d.Run(TestDriver::Io(Opcode::kFlush, 2, 0, 0, 0, 0)) != Status::kOk) _exit(13);
    std::memset(d.Buffer(at), 0, 4096);
    if (d.Run(TestDriver::Io(Opcode::kRead, 3, 51, 1, at, 4096)) != Status::kOk) _exit(14);
    if (d.Buffer(at)[4095] != std::byte{0xAB}) _exit(15);
    _exit(0);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
  EXPECT_EQ(Durable(50, 2), std::vector<std::byte>(2 * 4096, std::byte{0xAB}));
}

}  // namespace
}  // namespace umbra::hw::disk
