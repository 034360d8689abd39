// The disk under a hostile or broken driver: every bad command, register or
// queue pointer is refused and counted, and the device keeps serving.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "runtime/hw/disk/disk_device.h"
#include "tests/runtime/hw/disk/disk_fixture.h"

namespace umbra::hw::disk {
namespace {

using DiskHostileTest = DiskFixture;

struct BadCommand {
  const char* what;
  DiskCommand command;
  Status expected;
};

std::vector<BadCommand> BadCommands(uint64_t dma_size) {
  const uint64_t data = TestDriver::kDataOffset;
  auto io = [&](Opcode op, uint64_t lba, uint32_t blocks, uint64_t offset, uint64_t length) {
    return TestDriver::Io(op, 1, lba, blocks, offset, length);
  };
  DiskCommand opcode0 = io(Opcode::kRead, 0, 1, data, 4096);
  opcode0.opcode = 0;
  DiskCommand opcode7 = opcode0;
  opcode7.opcode = 7;
  DiskCommand opcode255 = opcode0;
  opcode255.opcode = 255;
  DiskCommand big_tag = io(Opcode::kRead, 0, 1, data, 4096);
  big_tag.tag = 1024;
  DiskCommand max_tag = big_tag;
  max_tag.tag = 0xFFFF;
  return {
      {"opcode 0", opcode0, Status::kInvalidOpcode},
      {"opcode 7", opcode7, Status::kInvalidOpcode},
      {"opcode 255", opcode255, Status::kInvalidOpcode},
      {"tag at the limit", big_tag, Status::kInvalidTag},
      {"tag 0xFFFF", max_tag, Status::kInvalidTag},
      {"lba past the end", io(Opcode::kRead, 1024, 1, data, 4096), Status::kLbaOutOfRange},
      {"range crossing the end", io(Opcode::kWrite, 1020, 8, data, 8 * 4096), Status::kLbaOutOfRange},
      {"lba overflow", io(Opcode::kWrite, ~uint64_t{0}, 2, data, 2 * 4096), Status::kLbaOutOfRange},
      {"discard past the end", io(Opcode::kDiscard, 1000, 100, 0, 0), Status::kLbaOutOfRange},
      {"zero blocks", io(Opcode::kRead, 0, 0, data, 0), Status::kInvalidBlockCount},
      {"zero-block discard", io(Opcode::kDiscard, 0, 0, 0, 0), Status::kInvalidBlockCount},
      {"above max transfer", io(Opcode::kWrite, 0, 257, data, 257 * 4096), Status::kInvalidBlockCount},
      {"huge block count", io(Opcode::kRead, 0, ~uint32_t{0}, data, 0), Status::kInvalidBlockCount},
      {"length mismatch", io(Opcode::kRead, 0, 2, data, 4096), Status::kInvalidBuffer},
      {"buffer past the pool", io(Opcode::kRead, 0, 1, dma_size - 100, 4096), Status::kInvalidBuffer},
      {"buffer offset overflow", io(Opcode::kWrite, 0, 1, ~uint64_t{0} - 10, 4096), Status::kInvalidBuffer},
      {"buffer at the pool end", io(Opcode::kRead, 0, 1, dma_size, 4096), Status::kInvalidBuffer},
      {"misaligned buffer", io(Opcode::kWriteFua, 0, 1, data + 3, 4096), Status::kMisaligned},
      {"identify buffer too small", io(Opcode::kIdentify, 0, 0, data, 64), Status::kInvalidBuffer},
      {"identify outside the pool", io(Opcode::kIdentify, 0, 0, dma_size - 64, 4096), Status::kInvalidBuffer},
  };
}

TEST_F(DiskHostileTest, EveryBadCommandIsRefusedCountedAndReported) {
  std::vector<DiskFault> reported;
  DiskOptions o = Options();
  o.on_fault = [&](const DiskFault& f) { reported.push_back(f); };
  StartDisk(o);
  ASSERT_EQ(Write(0, 1, 1, Opcode::kWriteFua), Status::kOk);
  const auto bad = BadCommands(o.dma_size);
  for (const BadCommand& b : bad) {
    EXPECT_EQ(driver_->Run(b.command), b.expected) << b.what;
  }
  EXPECT_EQ(disk_->faults(), bad.size());
  EXPECT_EQ(disk_->counters().refused, bad.size());
  EXPECT_EQ(disk_->counters().writes + disk_->counters().reads, 0u);
  disk_->Stop();  // the callback ran on the hardware thread; read its log after joining
  ASSERT_EQ(reported.size(), bad.size());
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_EQ(reported[i].kind, FaultKind::kCommand);
    EXPECT_EQ(reported[i].status, bad[i].expected) << bad[i].what;
    EXPECT_EQ(reported[i].command.opcode, bad[i].command.opcode);
  }
  disk_->Start();
  // Nothing was executed: block 0 and the end of the disk are untouched.
  EXPECT_EQ(Read(0, 1), Pattern(0, 1, 1));
  EXPECT_EQ(Read(1020, 4), Zeros(4));
}

TEST_F(DiskHostileTest, GarbageCommandsNeverCrashTheDevice) {
  DiskOptions o = Options();
  o.capacity_blocks = 64;
  StartDisk(o, 64);
  std::mt19937_64 rng(42);
  std::vector<DiskCompletion> done;
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 64; ++i) {
      DiskCommand c;
      auto* words = reinterpret_cast<uint64_t*>(&c);
      for (size_t w = 0; w < sizeof c / 8; ++w) words[w] = rng();
      // Half the time, a plausible opcode with random fields.
      if (i % 2 == 0) c.opcode = static_cast<uint8_t>(1 + rng() % 6);
      if (i % 4 == 0) c.num_blocks = static_cast<uint32_t>(rng() % 4);
      if (i % 8 == 0) c.lba = rng() % 80;
      driver_->Submit(c, false);
    }
    driver_->Ring();
    done.clear();
    ASSERT_TRUE(driver_->WaitFor(64, done, 5 * TestDriver::kSecond)) << "round " << round;
  }
  EXPECT_GT(disk_->faults(), 0u);
  // Still a working disk.
  ResetAndReprogram();
  ASSERT_EQ(Write(3, 2, 77), Status::kOk);
  EXPECT_EQ(Read(3, 2), Pattern(3, 2, 77));
}

TEST_F(DiskHostileTest, BadQueueConfigurationIsRefused) {
  DiskOptions o = Options();
  StartDisk(o);
  struct Config {
    const char* what;
    uint32_t depth;
    uint64_t sq;
    uint64_t cq;
  };
  const Config bad[] = {
      {"depth 0", 0, 0, 8192},
      {"depth 1", 1, 0, 8192},
      {"depth not a power of two", 24, 0, 8192},
      {"depth above the maximum", 256, 0, 32768},
      {"huge depth", 0x80000000u, 0, 8192},
      {"misaligned sq", 32, 8, 8192},
      {"misaligned cq", 32, 0, 8200},
      {"sq outside the pool", 32, o.dma_size, 8192},
      {"cq crossing the pool end", 32, 0, o.dma_size - 64},
      {"sq offset overflow", 32, ~uint64_t{0} - 63, 8192},
      {"overlapping queues", 32, 0, 1024},
  };
  uint64_t faults = disk_->faults();
  for (const Config& c : bad) {
    TestDriver driver(disk_->registers(), disk_->dma(), disk_->resources().doorbell_fd,
                      disk_->resources().interrupt_fd);
    EXPECT_FALSE(driver.Enable(c.depth, c.sq, c.cq)) << c.what;
    EXPECT_NE(disk_->registers()->status.load() & kStatusConfigError, 0u) << c.what;
    EXPECT_EQ(disk_->faults(), ++faults) << c.what;
  }
  NewDriver(32);
  EXPECT_EQ(disk_->registers()->status.load() & kStatusConfigError, 0u);
  EXPECT_EQ(Flush(), Status::kOk);
}

TEST_F(DiskHostileTest, BadQueuePointersAreRefusedOnce) {
  StartDisk(Options());
  DiskRegisters* regs = disk_->registers();
  const uint64_t before = disk_->faults();
  regs->sq_tail.store(1000);  // far more than depth entries "submitted"
  driver_->Ring();
  const int64_t deadline = MonotonicNanos() + 5 * TestDriver::kSecond;
  while (disk_->faults() == before && MonotonicNanos() < deadline) usleep(100);
  for (int i = 0; i < 10; ++i) driver_->Ring();
  usleep(20'000);
  EXPECT_EQ(disk_->faults(), before + 1);  // counted once, not once per poll
  EXPECT_EQ(regs->sq_head.load(), 0u);     // nothing consumed
  regs->sq_tail.store(0);
  // cq_head ahead of every posted completion.
  regs->cq_head.store(77);
  driver_->Submit(TestDriver::Io(Opcode::kFlush, 1, 0, 0, 0, 0));
  while (disk_->faults() == before + 1 && MonotonicNanos() < deadline) usleep(100);
  EXPECT_EQ(disk_->faults(), before + 2);
  EXPECT_EQ(regs->cq_tail.load(), 0u);
  ResetAndReprogram();
  EXPECT_EQ(Flush(), Status::kOk);
}

TEST_F(DiskHostileTest, DriverThatNeverConsumesCompletionsOnlyStallsItself) {
  StartDisk(Options(), 4);
  DiskRegisters* regs = disk_->registers();
  for (uint16_t t = 0; t < 4; ++t) driver_->Submit(TestDriver::Io(Opcode::kFlush, t, 0, 0, 0, 0));
  const int64_t deadline = MonotonicNanos() + 5 * TestDriver::kSecond;
  while (regs->cq_tail.load() != 4 && MonotonicNanos() < deadline) usleep(100);
  // The CQ is full: four more are not consumed until the driver makes room.
  for (uint16_t t = 4; t < 8; ++t) driver_->Submit(TestDriver::Io(Opcode::kFlush, t, 0, 0, 0, 0));
  usleep(20'000);
  EXPECT_EQ(regs->sq_head.load(), 4u);
  EXPECT_EQ(regs->cq_tail.load(), 4u);
  std::vector<DiskCompletion> done;
  ASSERT_TRUE(driver_->WaitFor(8, done, 5 * TestDriver::kSecond));
  EXPECT_EQ(disk_->faults(), 0u);
}

TEST_F(DiskHostileTest, GarbageInEveryRegisterThenResetRecovers) {
  StartDisk(Options());
  DiskRegisters* regs = disk_->registers();
  std::mt19937_64 rng(7);
  for (int round = 0; round < 500; ++round) {
    auto* words = reinterpret_cast<std::atomic<uint32_t>*>(regs);
    for (size_t i = 0; i < sizeof(DiskRegisters) / 4; ++i) {
      if (rng() % 3 == 0) words[i].store(static_cast<uint32_t>(rng()));
    }
    // Random bytes in the queues too.
    auto dma = disk_->dma();
    for (int i = 0; i < 64; ++i) dma[rng() % TestDriver::kDataOffset] = static_cast<std::byte>(rng());
    driver_->Ring();
    if (round % 50 == 0) usleep(1000);
  }
  ResetAndReprogram();
  EXPECT_EQ(regs->magic.load(), kMagic);
  EXPECT_EQ(regs->capacity_blocks.load(), 1024u);
  ASSERT_EQ(Write(4, 1, 8, Opcode::kWriteFua), Status::kOk);
  EXPECT_EQ(Read(4, 1), Pattern(4, 1, 8));
}

// A driver thread that keeps (re)enabling the queues and pushing whatever is
// in the SQ, reading only registers: the device rewrites the queues under it
// after every Reset, so it must not look at queue memory.
std::thread Flood(DiskDevice* disk, std::atomic<bool>* stop) {
  return std::thread([disk, stop] {
    const Resources res = disk->resources();
    DiskRegisters* regs = disk->registers();
    TestDriver d(regs, disk->dma(), res.doorbell_fd, res.interrupt_fd);
    uint32_t tail = 0;
    while (!stop->load()) {
      if ((regs->status.load() & kStatusReady) == 0) {
        regs->sq_offset.store(0);
        regs->cq_offset.store(TestDriver::kCqOffset);
        regs->queue_depth.store(32);
        regs->int_mask.store(0);
        regs->control.store(0);
        d.Ring();
        regs->control.store(kControlEnable);
        d.Ring();
        tail = regs->sq_tail.load();
      }
      regs->sq_tail.store(++tail);
      regs->cq_head.store(regs->cq_tail.load());
      d.RingIfWanted();
    }
  });
}

TEST_F(DiskHostileTest, ResetRacingIo) {
  StartDisk(Options());
  std::atomic<bool> stop{false};
  std::thread flood = Flood(disk_.get(), &stop);
  for (int i = 0; i < 300; ++i) {
    disk_->Reset();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  stop.store(true);
  flood.join();
  // Whatever the flood left behind, a new driver gets a working disk.
  ResetAndReprogram();
  ASSERT_EQ(Write(2, 1, 3, Opcode::kWriteFua), Status::kOk);
  EXPECT_EQ(Read(2, 1), Pattern(2, 1, 3));
}

TEST_F(DiskHostileTest, UnplugRacingIo) {
  StartDisk(Options());
  ASSERT_EQ(Write(2, 1, 3, Opcode::kWriteFua), Status::kOk);
  std::atomic<bool> stop{false};
  std::thread flood = Flood(disk_.get(), &stop);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  disk_->Unplug(UnplugMode::kSurprise);
  for (int i = 0; i < 50; ++i) {
    disk_->Reset();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  stop.store(true);
  flood.join();
  ResetAndReprogram();
  EXPECT_EQ(Flush(), Status::kNoDevice);
  EXPECT_EQ(Durable(2, 1), Pattern(2, 1, 3));
}

}  // namespace
}  // namespace umbra::hw::disk
