// The block class end to end: the emulated disk with its volatile write
// cache, real driver processes that crash, hang and double-fault, and the
// shadow that loses no acknowledged write. Everything goes through
// block::Disk.
#include "shadows/block/block_shadow.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "shadows/block/workloads/compile_workload.h"
#include "shadows/block/workloads/sqlite_vfs.h"
#include "shadows/block/workloads/sqlite_workload.h"
#include "shadows/block/workloads/verify_workload.h"
#include "tests/shadows/block/block_rig.h"

namespace umbra::shadows::block {
namespace {

namespace hwd = hw::disk;
namespace proto = umbra::block;

std::vector<std::byte> Pattern(uint64_t lba, uint32_t gen, uint32_t blocks, uint32_t bs = 4096) {
  std::vector<std::byte> out(uint64_t{blocks} * bs);
  for (uint32_t i = 0; i < blocks; ++i) FillBlock(lba + i, gen, {out.data() + uint64_t{i} * bs, bs});
  return out;
}

TEST(BlockShadowTest, ReadsWritesFlushesDiscardsAndFuaThroughTheClassInterface) {
  BlockRig rig({});
  BlockShadow& d = rig.shadow();
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  EXPECT_EQ(d.capacity_blocks(), 4096u);
  EXPECT_EQ(d.block_size(), 4096u);
  EXPECT_TRUE(d.geometry().write_cache);
  EXPECT_GE(d.max_io_blocks(), 8u);
  auto data = Pattern(10, 1, 20);  // larger than one request: split
  ASSERT_TRUE(d.Write(10, data).has_value());
  std::vector<std::byte> back(data.size());
  ASSERT_TRUE(d.Read(10, back).has_value());
  EXPECT_EQ(back, data);
  EXPECT_TRUE(rig.disk().IsCached(10)) << "a plain write lands in the volatile cache";
  ASSERT_TRUE(d.Flush().has_value());
  EXPECT_EQ(*rig.disk().ReadDurable(10, 20), data);
  auto fua = Pattern(100, 2, 1);
  ASSERT_TRUE(d.WriteFua(100, fua).has_value());
  EXPECT_EQ(*rig.disk().ReadDurable(100, 1), fua);
  ASSERT_TRUE(d.Discard(10, 4).has_value());
  ASSERT_TRUE(d.Read(10, {back.data(), 4 * 4096}).has_value());
  EXPECT_TRUE(std::all_of(back.begin(), back.begin() + 4 * 4096, [](std::byte b) { return b == std::byte{0}; }));
  auto bad = d.Read(4095, back);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(d.stats().errors, 0u);
}

TEST(BlockShadowTest, TheHostMapsItsDataPoolForTheDiskWhileItRuns) {
  BlockRig rig({});
  BlockShadow& d = rig.shadow();
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  // The driver then points the device at payloads in the pool (no bounce copy).
  EXPECT_EQ(rig.disk().registers()->host_memory_size.load(), 320u * (64 << 10));
  auto data = Pattern(3, 1, 4);
  ASSERT_TRUE(d.Write(3, data).has_value());
  std::vector<std::byte> back(data.size());
  ASSERT_TRUE(d.Read(3, back).has_value());
  EXPECT_EQ(back, data);
  rig.host().Shutdown();
  EXPECT_EQ(rig.disk().registers()->host_memory_size.load(), 0u) << "still mapped after the host stopped";
}

TEST(BlockShadowTest, AcknowledgedUnflushedWritesSurviveACrashThatDropsTheCache) {
  BlockRig rig({});
  BlockShadow& d = rig.shadow();
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  constexpr uint32_t kWrites = 48;  // below retain_limit: no flush of the shadow's own
  for (uint32_t i = 0; i < kWrites; ++i) ASSERT_TRUE(d.Write(i * 3, Pattern(i * 3, 7, 1)).has_value());
  ASSERT_TRUE(rig.disk().IsCached(0)) << "acknowledged, only in the volatile cache";
  EXPECT_EQ(d.stats().retained, kWrites);
  rig.KillAndRecover(SIGKILL);  // Reset() dropped the cache
  EXPECT_GT(d.stats().replayed_writes, 0u);
  // One read after recovery: it is ordered after the replays, so once it
  // completed the device holds them all again.
  std::vector<std::byte> back(4096);
  ASSERT_TRUE(d.Read(0, back).has_value());
  EXPECT_EQ(back, Pattern(0, 7, 1));
  for (uint32_t i = 0; i < kWrites; ++i) {
    EXPECT_EQ(*rig.disk().ReadCurrent(i * 3, 1), Pattern(i * 3, 7, 1)) << "block " << i * 3 << " written again";
  }
  ASSERT_TRUE(d.Flush().has_value());
  EXPECT_EQ(d.stats().retained, 0u) << "the flush released them";
  for (uint32_t i = 0; i < kWrites; ++i) EXPECT_EQ(*rig.disk().ReadDurable(i * 3, 1), Pattern(i * 3, 7, 1));
}

TEST(BlockShadowTest, OverlappingWritesKeepTheNewestAcrossACrash) {
  BlockRig rig({});
  BlockShadow& d = rig.shadow();
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  // Generations 1..20 of the same block, the older ones made durable, the
  // newest only cached: after the crash the newest must win.
  for (uint32_t g = 1; g <= 20; ++g) {
    ASSERT_TRUE(d.Write(5, Pattern(5, g, 1)).has_value());
    if (g == 10) {
      ASSERT_TRUE(d.Flush().has_value());
    }
  }
  rig.KillAndRecover(SIGSEGV);
  std::vector<std::byte> back(4096);
  ASSERT_TRUE(d.Read(5, back).has_value());
  EXPECT_EQ(back, Pattern(5, 20, 1));
}

TEST(BlockShadowTest, RequestsDuringRecoveryAreQueuedWithBackPressureNotErrors) {
  BlockRig rig({.max_requests = 16});
  BlockShadow& d = rig.shadow();
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  rig.host().Kill(SIGSTOP);  // a hang: the heartbeat finds it ~20 ms later
  std::atomic<int> errors{0};
  std::vector<std::thread> writers;
  for (uint32_t t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (uint32_t i = 0; i < 40; ++i) {
        if (!d.Write(t * 100 + i, Pattern(t * 100 + i, 1, 1))) ++errors;
      }
    });
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(errors.load(), 0);
  std::vector<std::byte> back(4096);
  for (uint32_t t = 0; t < 4; ++t) {
    for (uint32_t i = 0; i < 40; ++i) {
      ASSERT_TRUE(d.Read(t * 100 + i, back).has_value());
      EXPECT_EQ(back, Pattern(t * 100 + i, 1, 1));
    }
  }
  // At least the hang; a loaded machine may add a missed-heartbeat detection.
  uint64_t waited = 0, failed = 0;
  for (const auto& r : d.recoveries()) {
    waited += r.queued + r.resubmitted;
    failed += r.failed;
  }
  EXPECT_GT(waited, 0u) << "writes waited for the new driver";
  EXPECT_EQ(failed, 0u);
}

// Each way a driver dies or misbehaves, with requests in flight and writes
// acknowledged but not flushed: nothing acknowledged is lost, no client sees
// an error.
TEST(BlockShadowTest, EveryWayOfKillingTheDriverIsHiddenAndLosesNoWrite) {
  BlockRig rig({});
  BlockShadow& d = rig.shadow();
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  uint32_t gen = 1;
  for (DriverFault f : rig.kill().faults()) {
    SCOPED_TRACE(DriverFaultName(f));
    ++gen;
    for (uint32_t lba = 0; lba < 16; ++lba) ASSERT_TRUE(d.Write(lba, Pattern(lba, gen, 1)).has_value());
    std::atomic<bool> done{false};
    std::atomic<int> errors{0};
    std::thread client([&] {  // traffic for the driver-side faults to fire on
      std::vector<std::byte> back(4096);
      for (uint32_t i = 0; !done; ++i) {
        if (!d.Write(100 + i % 64, Pattern(100 + i % 64, gen, 1)) || !d.Read(i % 16, back)) ++errors;
      }
    });
    rig.kill().KillAndRecover(f);
    done = true;
    client.join();
    EXPECT_EQ(errors.load(), 0);
    std::vector<std::byte> back(4096);
    for (uint32_t lba = 0; lba < 16; ++lba) {
      ASSERT_TRUE(d.Read(lba, back).has_value());
      EXPECT_EQ(back, Pattern(lba, gen, 1)) << "block " << lba;
    }
  }
  EXPECT_GE(d.recoveries().size(), rig.kill().faults().size());
  for (const auto& rec : d.recoveries()) EXPECT_TRUE(rec.succeeded) << rec.failure;
  EXPECT_EQ(d.stats().errors, 0u);
}

TEST(BlockShadowTest, VerifyingWorkloadLosesNothingWhileTheDriverIsKilledHundredsOfTimes) {
  BlockRig rig({});
  BlockShadow& d = rig.shadow();
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  VerifyWorkload w(d, {.blocks = 2048, .queue_depth = 16, .max_blocks = 4, .seed = 3});
  KillFixture::Background killer(rig.kill(), 240, 5);
  VerifyReport r;
  while (d.recoveries().size() < 200 && r.clean() && r.ops < 2'000'000) r = w.Run(2000);
  const int kills = killer.Stop();
  r = w.Run(500);
  r = w.Verify();
  EXPECT_TRUE(r.clean()) << r.ToString();
  EXPECT_GE(kills, 200);
  EXPECT_GT(r.reads, 1000u);
  ASSERT_TRUE(d.Flush().has_value());
  // The image itself (what survives anything) holds every acknowledged write.
  std::vector<std::byte> want(4096);
  uint64_t image_mismatches = 0;
  auto image = *rig.disk().ReadDurable(0, 2048);
  for (uint64_t lba = 0; lba < 2048; ++lba) {
    w.ExpectedBlock(lba, want);
    if (std::memcmp(want.data(), image.data() + lba * 4096, 4096) != 0) ++image_mismatches;
  }
  EXPECT_EQ(image_mismatches, 0u);
  const BlockStats s = d.stats();
  EXPECT_EQ(s.errors, 0u);
  EXPECT_GT(s.resubmitted, 0u) << "crashes caught requests in flight";
  EXPECT_GT(s.replayed_writes, 0u) << "crashes caught acknowledged, unflushed writes";
  for (const auto& rec : d.recoveries()) EXPECT_TRUE(rec.succeeded) << rec.failure;
}

TEST(BlockShadowTest, VerifyingWorkloadSurvivesReversedCompletionsAndInjectedDriverBugs) {
  BlockRig rig({.order = hwd::CompletionOrder::kReversedPerBatch,
                .failpoints = "seed=9;disk.complete=0.3%segfault->0.2%wrong_length;disk.submit=0.2%abort;"
                              "disk.irq=0.1%drop_completion;disk.flush=2%exit"});
  BlockShadow& d = rig.shadow();
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  VerifyWorkload w(d, {.blocks = 1024, .queue_depth = 8, .seed = 4});
  VerifyReport r = w.Run(20000);
  r = w.Verify();
  EXPECT_TRUE(r.clean()) << r.ToString();
  EXPECT_GT(d.recoveries().size(), 5u) << "the failpoints fired";
}

TEST(BlockShadowTest, SqliteCommitsSurviveRepeatedCrashes) {
  BlockRig rig({});
  BlockShadow& d = rig.shadow();
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  auto vfs = *BlockVfs::Create(d, {.name = "umbra-shadowed"});
  SqliteWorkload w({.vfs = vfs->name(), .seed = 2});
  ASSERT_TRUE(w.Open().has_value());
  KillFixture::Background killer(rig.kill(), 60, 6);
  SqliteReport r;
  while (r.committed < 300 && r.failed == 0) r = w.Run(10);
  const int kills = killer.Stop();
  EXPECT_GE(kills, 10);
  r = w.Check();
  EXPECT_TRUE(r.clean()) << r.ToString();
  // Again from the medium: a fresh connection, after one more crash.
  w.Close();
  rig.KillAndRecover(SIGKILL);
  vfs.reset();
  vfs = *BlockVfs::Create(d, {.name = "umbra-shadowed"});
  ASSERT_TRUE(w.Open().has_value());
  r = w.Check();
  EXPECT_TRUE(r.clean()) << r.ToString();
  EXPECT_EQ(vfs->io_errors(), 0u) << vfs->last_error();
}

TEST(BlockShadowTest, CompilerLikeClientBuildsAcrossCrashes) {
  BlockRig rig({});
  BlockShadow& d = rig.shadow();
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  CompileWorkload w(d, {.sources = 96, .slot_blocks = 8, .seed = 8});
  ASSERT_LE(w.blocks_needed(), d.capacity_blocks());
  KillFixture::Background killer(rig.kill(), 50, 7);
  CompileReport r;
  for (int b = 0; b < 12 && r.clean(); ++b) r = w.Build();
  killer.Stop();
  r = w.Build();
  EXPECT_TRUE(r.clean()) << r.ToString();
  EXPECT_GT(d.recoveries().size(), 3u);
}

TEST(BlockShadowTest, DoubleFaultDuringResubmissionStillLosesNothing) {
  // The faulty driver's second instance crashes on its third request: right
  // in the middle of resubmitting what the first one had in flight.
  BlockRig rig({.driver = UMBRA_FAULTY_DISK_DRIVER});
  BlockShadow& d = rig.shadow();
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  VerifyWorkload w(d, {.blocks = 512, .queue_depth = 16, .seed = 10});
  std::thread client([&] { w.Run(3000); });
  usleep(20 * 1000);
  rig.host().Kill(SIGKILL);
  client.join();
  VerifyReport r = w.Verify();
  EXPECT_TRUE(r.clean()) << r.ToString();
  auto recs = d.recoveries();
  ASSERT_GE(recs.size(), 1u);
  EXPECT_GE(recs[0].attempts, 2u) << "the first restart double-faulted";
  EXPECT_TRUE(recs.back().succeeded);
}

TEST(BlockShadowTest, SpentRestartBudgetFailsRequestsWithAClearError) {
  BlockRig rig({.budget = 2, .failpoints = "disk.submit=5+segfault"});
  BlockShadow& d = rig.shadow();
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  std::vector<std::byte> block(4096);
  Result<void> r;
  for (int i = 0; i < 100 && r; ++i) r = d.Write(i, Pattern(i, 1, 1), 10 * kSec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kDeviceFailed);
  EXPECT_NE(r.error().message.find("failed"), std::string::npos) << r.error().message;
  auto again = d.Read(0, block);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, Errc::kDeviceFailed);
  EXPECT_EQ(d.state(), ShadowState::kFailed);
}

TEST(BlockShadowTest, HotUnplugFailsPendingAndNewRequestsAndKeepsAcknowledgedData) {
  BlockRig rig({});
  BlockShadow& d = rig.shadow();
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  for (uint32_t i = 0; i < 32; ++i) ASSERT_TRUE(d.Write(i, Pattern(i, 3, 1)).has_value());
  ASSERT_TRUE(d.Flush().has_value());
  ASSERT_TRUE(d.WriteFua(40, Pattern(40, 4, 1)).has_value());
  // A queue of requests in flight when the disk goes away.
  std::vector<std::byte> bufs(16 * 4096);
  for (uint32_t i = 0; i < 16; ++i) {
    ASSERT_TRUE(
        d.Submit({.op = proto::kRead, .lba = i, .blocks = 1, .data = bufs.data() + i * 4096, .user_data = i}, kSec)
            .has_value());
  }
  rig.disk().Unplug(hwd::UnplugMode::kSurprise);
  IoDone done[16];
  size_t got = 0;
  uint32_t ok = 0, no_device = 0;
  while (got < 16) {
    auto n = d.Reap({done + got, 16 - got}, 1, 10 * kSec);
    ASSERT_TRUE(n.has_value());
    for (size_t i = got; i < got + *n; ++i) {
      (done[i].status == 0 ? ok : no_device) += 1;
      if (done[i].status != 0) {
        EXPECT_EQ(done[i].status, static_cast<int32_t>(Errc::kNoDevice));
      }
    }
    got += *n;
  }
  EXPECT_EQ(ok + no_device, 16u);
  auto w = d.Write(50, Pattern(50, 1, 1));
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code, Errc::kNoDevice);
  EXPECT_NE(w.error().message.find("no such device"), std::string::npos) << w.error().message;
  EXPECT_TRUE(d.unplugged());
  for (uint32_t i = 0; i < 32; ++i) EXPECT_EQ(*rig.disk().ReadDurable(i, 1), Pattern(i, 3, 1));
  EXPECT_EQ(*rig.disk().ReadDurable(40, 1), Pattern(40, 4, 1));
}

TEST(BlockShadowTest, WriteCacheModeIsReplayedAndMakesWritesDurableOnAcknowledgement) {
  BlockRig rig({});
  BlockShadow& d = rig.shadow();
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  ASSERT_TRUE(d.Write(1, Pattern(1, 1, 1)).has_value());
  ASSERT_TRUE(d.SetWriteCache(false).has_value());
  EXPECT_EQ(*rig.disk().ReadDurable(1, 1), Pattern(1, 1, 1)) << "turning the cache off wrote it back";
  EXPECT_EQ(d.stats().retained, 0u);
  ASSERT_TRUE(d.SetQueueDepth(4).has_value());
  rig.KillAndRecover(SIGABRT);
  EXPECT_EQ(rig.disk().registers()->status.load() & hwd::kStatusCacheOn, 0u) << "replayed after the reset";
  EXPECT_FALSE(d.geometry().write_cache);
  ASSERT_TRUE(d.Write(2, Pattern(2, 1, 1)).has_value());
  EXPECT_EQ(*rig.disk().ReadDurable(2, 1), Pattern(2, 1, 1));
  EXPECT_EQ(d.stats().retained, 0u) << "durable on acknowledgement: nothing to keep";
}

TEST(BlockShadowTest, RestartOnlyModeShowsTheCrashesToSqlite) {
  BlockRig rig({.mode = RecoveryMode::kRestartOnly});
  BlockShadow& d = rig.shadow();
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  auto vfs = *BlockVfs::Create(d, {.name = "umbra-restart-only"});
  SqliteWorkload w({.vfs = vfs->name(), .seed = 3});
  ASSERT_TRUE(w.Open().has_value());
  KillFixture::Background killer(rig.kill(), 30, 8);
  SqliteReport r;
  for (int i = 0; i < 100 && r.failed == 0; ++i) r = w.Run(5);
  killer.Stop();
  EXPECT_GT(r.failed, 0u) << "without the shadow SQLite sees I/O errors: " << r.ToString();
  EXPECT_GT(vfs->io_errors(), 0u);
  EXPECT_FALSE(r.first_error.empty());
}

// Arms every driver from now on to lose its first request at disk.submit
// (never give it to the device, never complete it) and submits a write of
// `data` at `lba` (user_data 1), which the current driver loses.
void SubmitAWriteTheDriverLoses(BlockRig& rig, uint64_t lba, std::vector<std::byte>& data) {
  ASSERT_TRUE(rig.shadow().WaitUntilPassive(10 * kSec).has_value());
  ASSERT_TRUE(rig.host().SetFailpoints("disk.submit=0+1*drop_completion").has_value());
  ASSERT_TRUE(
      rig.shadow()
          .Submit({.op = umbra::block::kWrite, .lba = lba, .blocks = 1, .data = data.data(), .user_data = 1}, kSec)
          .has_value());
}

// The driver loses a write at disk.submit (never gives it to the device) and
// then completes a flush submitted after it. The flush did not cover the
// lost write, so once the write is sent again (after the request-deadline
// hang) and completes, it is only in the volatile cache and must stay
// retained. Before, the flush had marked it durable while it was lost: it was
// released at its completion, and the next crash's reset dropped it.
TEST(BlockShadowTest, FlushDoesNotCoverAWriteTheDriverLost) {
  BlockRig rig({});
  BlockShadow& d = rig.shadow();
  auto data = Pattern(10, 9, 1);
  ASSERT_NO_FATAL_FAILURE(SubmitAWriteTheDriverLoses(rig, 10, data));
  ASSERT_TRUE(d.Submit({.op = umbra::block::kFlush, .user_data = 2}, kSec).has_value());
  IoDone done[2];
  auto n = d.Reap(done, 1, 10 * kSec);
  ASSERT_TRUE(n.has_value()) << n.error().ToString();
  ASSERT_EQ(*n, 1u);
  EXPECT_EQ(done[0].user_data, 2u) << "the flush completes; the write is lost";
  ASSERT_TRUE(rig.host().SetFailpoints("").has_value());  // the next drivers lose nothing
  n = d.Reap(done, 1, 10 * kSec);                         // after the hang is detected and the write sent again
  ASSERT_TRUE(n.has_value()) << n.error().ToString();
  EXPECT_EQ(done[0].user_data, 1u);
  EXPECT_EQ(done[0].status, 0);
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  EXPECT_EQ(d.stats().retained, 1u) << "written after the flush: not durable";
  rig.KillAndRecover(SIGKILL);  // Reset() drops the cache
  std::vector<std::byte> back(4096);
  ASSERT_TRUE(d.Read(10, back).has_value());
  EXPECT_EQ(back, data);
}

// With the oldest request lost by the driver, no retained write can be
// released (release goes in order) until the hang is detected. The shadow
// used to flush again after every flush, since the retained count stayed
// over its limit: thousands of flushes in the deadline's 300 ms.
TEST(BlockShadowTest, RetainedWritesBehindALostRequestAreFlushedOnceNotOverAndOver) {
  BlockRig rig({});
  BlockShadow& d = rig.shadow();
  auto first = Pattern(0, 1, 1);
  ASSERT_NO_FATAL_FAILURE(SubmitAWriteTheDriverLoses(rig, 0, first));
  constexpr uint32_t kWrites = 80;  // past the retain limit (64)
  for (uint32_t i = 1; i <= kWrites; ++i) ASSERT_TRUE(d.Write(i, Pattern(i, 1, 1)).has_value());
  ASSERT_TRUE(rig.host().SetFailpoints("").has_value());
  IoDone done[1];
  auto n = d.Reap(done, 1, 10 * kSec);  // the lost write, sent again after the hang
  ASSERT_TRUE(n.has_value()) << n.error().ToString();
  EXPECT_LE(d.stats().internal_flushes, 2u) << "none while the oldest write is lost, one after";
  std::vector<std::byte> back(4096);
  for (uint32_t i = 0; i <= kWrites; i += 20) {
    ASSERT_TRUE(d.Read(i, back).has_value());
    EXPECT_EQ(back, Pattern(i, 1, 1)) << "block " << i;
  }
}
// duplicate_id@sdk.request: the driver completes a read (length 0) before it
// even hands it to the device, then once more when the device is done. The
// shadow used to copy the buffer at the first completion: whatever the pool
// held (the device usually won the race; the campaign saw stale data once in
// a few hundred runs). A successful read reports its whole length; anything
// else is a driver bug, and the read goes to the next driver.
TEST(BlockShadowTest, ReadCompletedWithTheWrongLengthIsADriverBugAndIsReadAgain) {
  BlockRig rig({});
  BlockShadow& d = rig.shadow();
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  ASSERT_TRUE(d.Write(5, Pattern(5, 3, 1)).has_value());
  ASSERT_TRUE(d.Flush().has_value());  // nothing retained: nothing replayed
  // Every driver instance gets the spec: its second request is completed
  // early. The first driver's is the second read; the second driver's first
  // is that read again, and the test sends nothing more.
  ASSERT_TRUE(rig.host().SetFailpoints("sdk.request=1+1*duplicate_id").has_value());
  std::vector<std::byte> back(4096);
  ASSERT_TRUE(d.Read(6, back).has_value());
  auto read = d.Read(5, back);
  ASSERT_TRUE(read.has_value()) << read.error().ToString();
  EXPECT_EQ(back, Pattern(5, 3, 1));
  EXPECT_EQ(d.stats().driver_errors, 1u) << "the length-0 completion was refused";
  ASSERT_TRUE(d.WaitUntilPassive(10 * kSec).has_value());
  EXPECT_EQ(d.recoveries().size(), 1u);
}

}  // namespace
}  // namespace umbra::shadows::block
