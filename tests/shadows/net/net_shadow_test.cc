// The network class end to end: a real driver process behind the net shadow,
// used only through net::Interface, while the driver is crashed, aborted,
// killed and hung.
#include <signal.h>

#include <array>
#include <atomic>
#include <cstring>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "shadows/builtin/builtin.h"
#include "shadows/net/workloads/file_transfer.h"
#include "tests/shadows/net/net_rig.h"

namespace umbra::net {
namespace {

using namespace testing;
using workloads::FileTransferOptions;
using workloads::InterfacePort;
using workloads::PeerPort;

std::vector<std::byte> RandomFile(size_t size, uint32_t seed) {
  std::vector<std::byte> data(size);
  std::mt19937 rng(seed);
  for (auto& b : data) b = std::byte(rng());
  return data;
}

std::vector<std::byte> Frame(uint64_t dst, uint64_t src, uint32_t seq, size_t size = 64) {
  std::vector<std::byte> f(size, std::byte{0x5A});
  for (int i = 0; i < 6; ++i) {
    f[i] = std::byte(dst >> (8 * i));
    f[6 + i] = std::byte(src >> (8 * i));
  }
  f[12] = std::byte{0x88};
  f[13] = std::byte{0xB6};
  std::memcpy(f.data() + 14, &seq, sizeof seq);
  return f;
}

// Kills the driver with `faults` in turn, `count` times, while `busy` holds.
void KillLoop(NetRig& rig, int count, std::atomic<bool>& done, std::atomic<int>& kills) {
  const int signals[] = {SIGSEGV, SIGABRT, SIGKILL, SIGSTOP};
  std::mt19937 rng(11);
  for (int i = 0; i < count && !done; ++i) {
    usleep(std::uniform_int_distribution<int>(5'000, 30'000)(rng));
    if (done) break;
    rig.KillAndRecover(signals[i % 4]);
    ++kills;
  }
}

TEST(NetShadowTest, TransmitBeforeAnyReceiveOrOpenSendsTheFrame) {
  NetRig rig;
  ASSERT_NO_FATAL_FAILURE(rig.Build(shadows::RecoveryMode::kShadow, {}, /*open=*/false));
  ASSERT_TRUE(rig.shadow->Up().has_value());
  std::vector<std::byte> frame(64, std::byte{0x5a});
  for (int i = 0; i < 6; ++i) frame[i] = std::byte(kPeerMac >> (8 * i));
  FrameView v(frame);
  auto sent = rig.shadow->Transmit({&v, 1});  // it used to spin here for ever
  ASSERT_TRUE(sent.has_value()) << sent.error().ToString();
  EXPECT_EQ(*sent, 1u);
  std::vector<std::byte> buf(2048);
  auto got = rig.peer->Receive(buf, 5 * kSec);
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(*got, frame.size());
}

TEST(NetShadowTest, FileTransferFromTheNicSurvivesCrashesAbortsKillsAndHangs) {
  NetRig rig;
  ASSERT_NO_FATAL_FAILURE(rig.Build());
  ASSERT_TRUE(rig.shadow->Up().has_value());
  const auto file = RandomFile(3 << 20, 1);
  FileTransferOptions o;
  std::atomic<bool> done{false};
  std::atomic<int> kills{0};
  std::thread killer([&] { KillLoop(rig, 24, done, kills); });
  InterfacePort nic(*rig.shadow);
  // Transfer after transfer, each checked, until several faults fell inside.
  for (int round = 0; round < 20 && (round == 0 || kills < 4); ++round) {
    Result<workloads::FileTransferStats> got = Fail(Errc::kInternal, "not run");
    std::thread receiver([&] {
      PeerPort peer(*rig.peer, kPeerMac);
      got = workloads::ReceiveFile(peer, o);
    });
    auto sent = workloads::SendFile(nic, kPeerMac, file, o);
    receiver.join();
    ASSERT_TRUE(sent.has_value()) << "round " << round << ": " << sent.error().ToString();
    ASSERT_TRUE(got.has_value()) << "round " << round << ": " << got.error().ToString();
    EXPECT_EQ(got->bytes, file.size());
    EXPECT_EQ(got->checksum, workloads::Fnv1a(file));
  }
  done = true;
  killer.join();
  EXPECT_GE(kills, 4) << "the transfers outlived several faults";
  for (const auto& r : rig.shadow->recoveries()) EXPECT_TRUE(r.succeeded);
}

TEST(NetShadowTest, FileTransferIntoTheNicSurvivesFailpointCrashes) {
  NetRig rig;
  // Every driver instance dies after a few hundred frames: by a segfault in
  // receive, an abort in the interrupt handler, or a hang in transmit.
  ASSERT_NO_FATAL_FAILURE(rig.Build(shadows::RecoveryMode::kShadow, [](auto& o) {
    o.failpoints = "seed=3;nic.rx=400+1%segfault;nic.irq=600+1%abort;nic.tx=300+1%hang";
  }));
  ASSERT_TRUE(rig.shadow->Up().has_value());
  const auto file = RandomFile(2 << 20, 2);
  FileTransferOptions o;
  Result<workloads::FileTransferStats> got = Fail(Errc::kInternal, "not run");
  std::vector<std::byte> bytes;
  std::thread receiver([&] {
    InterfacePort nic(*rig.shadow);
    got = workloads::ReceiveFile(nic, o, &bytes);
  });
  PeerPort peer(*rig.peer, kPeerMac);
  auto sent = workloads::SendFile(peer, rig.shadow->Mac(), file, o);
  receiver.join();
  ASSERT_TRUE(sent.has_value()) << sent.error().ToString();
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(got->checksum, workloads::Fnv1a(file));
  EXPECT_TRUE(bytes == file);
  const auto records = rig.shadow->recoveries();
  EXPECT_GE(records.size(), 3u) << "failpoints crashed the driver repeatedly";
  for (const auto& r : records) EXPECT_TRUE(r.succeeded);
}

TEST(NetShadowTest, AnalyzerInPromiscuousModeSeesEveryFrameAfterEachRecovery) {
  NetRig rig;
  ASSERT_NO_FATAL_FAILURE(rig.Build());
  ASSERT_TRUE(rig.shadow->SetRxMode({.promiscuous = true}).has_value());
  ASSERT_TRUE(rig.shadow->Up().has_value());
  constexpr uint64_t kSomeoneElse = 0x770000000002;
  const int signals[] = {SIGSEGV, SIGABRT, SIGKILL, SIGSTOP};
  uint32_t seq = 0;
  for (int round = 0; round < 8; ++round) {
    ASSERT_NO_FATAL_FAILURE(rig.KillAndRecover(signals[round % 4]));
    constexpr uint32_t kFrames = 100;
    const uint32_t first = seq;
    for (uint32_t i = 0; i < kFrames; ++i) {
      auto f = Frame(kSomeoneElse, kPeerMac, seq++);
      ASSERT_TRUE(rig.peer->Send(f).has_value());
    }
    uint32_t seen = 0, expect = first;
    std::array<FrameView, 32> in;
    const int64_t deadline = MonotonicNanos() + 5 * kSec;
    while (seen < kFrames && MonotonicNanos() < deadline) {
      auto n = rig.shadow->Receive(in, 100 * kMs);
      ASSERT_TRUE(n.has_value()) << n.error().ToString();
      for (size_t i = 0; i < *n; ++i) {
        uint32_t s;
        std::memcpy(&s, in[i].data() + 14, sizeof s);
        EXPECT_EQ(s, expect++) << "frames arrive complete and in order";
        ++seen;
      }
    }
    EXPECT_EQ(seen, kFrames) << "round " << round << ": every frame for another host was seen";
  }
}

TEST(NetShadowTest, RegistersAfterRecoveryEqualThoseBeforeAndStatsAreMonotonic) {
  NetRig rig;
  ASSERT_NO_FATAL_FAILURE(rig.Build());
  Interface& nic = *rig.shadow;
  ASSERT_TRUE(nic.SetMac(0x3412000000AA).has_value());
  ASSERT_TRUE(nic.SetMtu(1400).has_value());
  ASSERT_TRUE(nic.SetRxMode({.promiscuous = true, .all_multicast = true}).has_value());
  const uint64_t groups[] = {0x0100005E0001, 0x0100005E00FB, 0x3333000000FB};
  ASSERT_TRUE(nic.SetMulticast(groups).has_value());
  ASSERT_TRUE(nic.Up().has_value());
  ASSERT_TRUE(nic.SetRxMode({.promiscuous = true}).has_value()) << "a setting changed after up";
  const hw::nic::NicSnapshot before = rig.nic->snapshot();
  EXPECT_TRUE(before.promiscuous());
  EXPECT_EQ(before.mac, 0x3412000000AAu);
  EXPECT_EQ(before.mtu, 1400u);
  EXPECT_EQ(before.mc_count, 3u);

  NetStats last = nic.Stats();
  const int signals[] = {SIGSEGV, SIGABRT, SIGKILL, SIGSTOP};
  for (int i = 0; i < 8; ++i) {
    for (uint32_t k = 0; k < 20; ++k) {
      auto f = Frame(kPeerMac, nic.Mac(), k);
      FrameView v(f);
      ASSERT_TRUE(nic.Transmit({&v, 1}).has_value());
    }
    ASSERT_NO_FATAL_FAILURE(rig.KillAndRecover(signals[i % 4]));
    EXPECT_EQ(rig.nic->snapshot(), before) << "after fault " << i;
    EXPECT_EQ(nic.Mac(), 0x3412000000AAu);
    EXPECT_EQ(nic.Mtu(), 1400u);
    const NetStats now = nic.Stats();
    EXPECT_GE(now.tx_frames, last.tx_frames + 20) << "statistics never go back";
    EXPECT_GE(now.rx_frames, last.rx_frames);
    EXPECT_EQ(now.recoveries, static_cast<uint64_t>(i + 1));
    last = now;
  }
}

TEST(NetShadowTest, SettingsMadeWhileRecoveringAreReplayed) {
  NetRig rig;
  ASSERT_NO_FATAL_FAILURE(rig.Build());
  ASSERT_TRUE(rig.shadow->Up().has_value());
  rig.host->Kill(SIGSTOP);
  while (rig.shadow->passive()) usleep(100);
  EXPECT_TRUE(rig.shadow->SetMtu(600).has_value()) << "logged now, replayed later";
  EXPECT_EQ(rig.shadow->Mtu(), 600u) << "answered from the shadow";
  auto f = Frame(kPeerMac, rig.shadow->Mac(), 1);
  FrameView v(f);
  auto sent = rig.shadow->Transmit({&v, 1});
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(*sent, 1u) << "dropped while recovering, reported as accepted";
  ASSERT_TRUE(rig.shadow->WaitUntilPassive(10 * kSec).has_value());
  EXPECT_EQ(rig.nic->snapshot().mtu, 600u);
  EXPECT_GE(rig.shadow->Stats().tx_dropped, 1u);
  EXPECT_TRUE(rig.shadow->LinkUp());
}

TEST(NetShadowTest, InvalidSettingsAreRefusedAndNotLogged) {
  NetRig rig;
  ASSERT_NO_FATAL_FAILURE(rig.Build());
  EXPECT_EQ(rig.shadow->SetMac(0x010000000001).error().code, Errc::kInvalidArgument) << "multicast";
  EXPECT_EQ(rig.shadow->SetMtu(20).error().code, Errc::kInvalidArgument);
  const uint64_t unicast[] = {0x020000000002};
  EXPECT_EQ(rig.shadow->SetMulticast(unicast).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(rig.shadow->Mac(), rig.shadow->permanent_mac());
  EXPECT_EQ(rig.shadow->Mtu(), 1500u);
}

TEST(NetShadowTest, DoubleFaultDuringReplayRecovers) {
  NetRig rig;
  // Heartbeats slow enough that the 300 ms replay step below is not a hang.
  ASSERT_NO_FATAL_FAILURE(
      rig.Build(shadows::RecoveryMode::kShadow, [](auto& o) { o.heartbeat_period_ns = 250 * kMs; }));
  ASSERT_TRUE(rig.shadow->SetMtu(1280).has_value());
  ASSERT_TRUE(rig.shadow->SetRxMode({.promiscuous = true}).has_value());
  ASSERT_TRUE(rig.shadow->Up().has_value());
  const auto before = rig.nic->snapshot();
  // Replay of the MTU takes 300 ms in every new driver: time to kill it there.
  ASSERT_TRUE(rig.host->SetFailpoints("nic.set_mtu=1*delay(300)").has_value());
  rig.host->Kill(SIGKILL);
  const int64_t deadline = MonotonicNanos() + 10 * kSec;
  while (MonotonicNanos() < deadline && !(rig.host->state() == runtime::DeviceState::kRunning &&
                                          rig.host->instance() >= 2 && !rig.shadow->passive())) {
    usleep(100);
  }
  usleep(50'000);  // inside the replay's delayed set-MTU
  ASSERT_FALSE(rig.shadow->passive());
  rig.host->Kill(SIGKILL);
  ASSERT_TRUE(rig.shadow->WaitUntilPassive(10 * kSec).has_value());
  const auto records = rig.shadow->recoveries();
  ASSERT_EQ(records.size(), 1u) << "one recovery, several attempts";
  EXPECT_GE(records[0].attempts, 2u);
  EXPECT_TRUE(records[0].succeeded);
  EXPECT_EQ(rig.nic->snapshot(), before);
}

TEST(NetShadowTest, BudgetSpentFailsEveryCallCleanly) {
  NetRig rig;
  ASSERT_NO_FATAL_FAILURE(rig.Build(shadows::RecoveryMode::kShadow, [](auto& o) {
    o.restart.budget = 2;
    o.restart.window_ns = 60 * kSec;
  }));
  ASSERT_TRUE(rig.shadow->Up().has_value());
  ASSERT_TRUE(rig.host->SetFailpoints("nic.probe=abort").has_value());
  rig.host->Kill(SIGSEGV);
  const int64_t deadline = MonotonicNanos() + 10 * kSec;
  while (rig.shadow->state() != shadows::ShadowState::kFailed && MonotonicNanos() < deadline) usleep(100);
  EXPECT_EQ(rig.shadow->WaitUntilPassive(10 * kSec).error().code, Errc::kDeviceFailed);
  EXPECT_EQ(rig.shadow->state(), shadows::ShadowState::kFailed);
  EXPECT_NE(rig.shadow->failure_reason().find("restart budget spent"), std::string::npos);
  auto f = Frame(kPeerMac, rig.shadow->Mac(), 1);
  FrameView v(f);
  EXPECT_EQ(rig.shadow->Transmit({&v, 1}).error().code, Errc::kDeviceFailed);
  std::array<FrameView, 4> in;
  EXPECT_EQ(rig.shadow->Receive(in, 10 * kMs).error().code, Errc::kDeviceFailed);
  EXPECT_EQ(rig.shadow->SetMtu(1000).error().code, Errc::kDeviceFailed);
}

TEST(NetShadowTest, RestartOnlyModeShowsTheCrashAndLosesTheConfiguration) {
  NetRig rig;
  ASSERT_NO_FATAL_FAILURE(
      rig.Build(shadows::RecoveryMode::kRestartOnly, [](auto& o) { o.restart.backoff_initial_ns = 50 * kMs; }));
  ASSERT_TRUE(rig.shadow->SetRxMode({.promiscuous = true}).has_value());
  ASSERT_TRUE(rig.shadow->Up().has_value());
  rig.host->Kill(SIGKILL);
  while (rig.shadow->passive()) usleep(100);
  auto f = Frame(kPeerMac, rig.shadow->Mac(), 1);
  FrameView v(f);
  EXPECT_EQ(rig.shadow->Transmit({&v, 1}).error().code, Errc::kUnavailable);
  ASSERT_TRUE(rig.shadow->WaitUntilPassive(10 * kSec).has_value());
  EXPECT_FALSE(rig.nic->snapshot().promiscuous()) << "no replay";
}

TEST(NetShadowTest, RegistryCreatesTheNetClass) {
  shadows::ShadowRegistry registry;
  shadows::RegisterBuiltinShadows(registry);
  EXPECT_TRUE(registry.Has("net"));
  EXPECT_TRUE(registry.Has("echo"));
  EXPECT_FALSE(registry.Register("net", CreateNetShadow).has_value()) << "a name registered twice";
  NetRig rig;
  ASSERT_NO_FATAL_FAILURE(rig.Build());
  auto s = registry.Create("net", *rig.host, {{"rx_buffers", "8"}});
  ASSERT_TRUE(s.has_value()) << s.error().ToString();
  EXPECT_EQ((*s)->class_name(), "net");
}

}  // namespace
}  // namespace umbra::net
