// The NIC driven the way its driver will drive it: through the register
// window and descriptor rings of nic_regs.h, doorbell and interrupt eventfds.
#include "runtime/hw/nic/nic.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include "runtime/hw/nic/wire.h"
#include "runtime/ipc/shared_memory.h"
#include "tests/runtime/hw/nic/test_driver.h"

namespace umbra::hw::nic {
namespace {

using testing::MakeFrame;
using testing::TestDriver;

constexpr uint64_t kNicMac = 0x010000000002;   // 02:00:00:00:00:01
constexpr uint64_t kPeerMac = 0x020000000002;  // 02:00:00:00:00:02
constexpr uint64_t kOtherMac = 0x990000000002;
constexpr uint64_t kBroadcast = 0xFFFFFFFFFFFF;
constexpr uint64_t kGroupA = 0x0100005E0001;  // 01:00:5e:00:00:01 (byte 0 = 0x01)
constexpr uint64_t kGroupB = 0x0200005E0001;

class NicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ports = WirePort::CreatePair();
    ASSERT_TRUE(ports.has_value());
    auto nic = Nic::Create({.name = "nic-test", .permanent_mac = kNicMac}, std::move(ports->first));
    ASSERT_TRUE(nic.has_value()) << nic.error().ToString();
    nic_ = std::move(*nic);
    auto peer = PeerEndpoint::Create(std::move(ports->second));
    ASSERT_TRUE(peer.has_value());
    peer_ = std::move(*peer);
    driver_ = MakeDriver();
    nic_->Start();
  }

  std::unique_ptr<TestDriver> MakeDriver() {
    return std::make_unique<TestDriver>(nic_->registers(), nic_->dma(), nic_->doorbell().fd(), nic_->interrupt().fd());
  }

  std::vector<std::byte> PeerReceive() {
    std::vector<std::byte> buf(kNicMaxFrameSize);
    auto n = peer_->Receive(buf, 2'000'000'000);
    if (!n) return {};
    buf.resize(*n);
    return buf;
  }

  void SendFromPeer(const std::vector<std::byte>& frame) { ASSERT_TRUE(peer_->Send(frame).has_value()); }

  std::unique_ptr<Nic> nic_;
  std::unique_ptr<PeerEndpoint> peer_;
  std::unique_ptr<TestDriver> driver_;
};

TEST_F(NicTest, PowerOnRegistersDescribeTheDevice) {
  NicRegisters& r = nic_->registers();
  EXPECT_EQ(r.magic.load(), kNicMagic);
  EXPECT_EQ(r.version.load(), kNicVersion);
  EXPECT_EQ(r.dma_size.load(), nic_->dma_size());
  EXPECT_EQ(NicMacFromRegs(r.mac_lo.load(), r.mac_hi.load()), kNicMac);
  EXPECT_EQ(NicMacFromRegs(r.perm_mac_lo.load(), r.perm_mac_hi.load()), kNicMac);
  EXPECT_EQ(r.mtu.load(), kNicDefaultMtu);
  EXPECT_NE(r.status.load() & kNicStatusLinkUp, 0u);
  EXPECT_EQ(r.int_mask.load(), 0u);
  EXPECT_EQ(nic_->compatible(), "umbra,e1000-emu");
  Resources res = nic_->resources();
  EXPECT_EQ(res.registers_size, kNicRegisterWindowSize);
  EXPECT_EQ(res.dma_offset, kNicRegisterWindowSize);
  EXPECT_EQ(res.region_size, res.dma_offset + res.dma_size);
}

TEST_F(NicTest, TransmittedFramesReachThePeerAndComplete) {
  ASSERT_TRUE(driver_->Open());
  std::vector<std::vector<std::byte>> sent;
  for (int i = 0; i < 10; ++i) {
    sent.push_back(MakeFrame(kPeerMac, kNicMac, 0x88B5, 46 + i * 100, uint8_t(i)));
    ASSERT_TRUE(driver_->Transmit(sent.back().data(), sent.back().size()));
  }
  driver_->Flush();
  uint64_t octets = 0;
  for (auto& f : sent) {
    EXPECT_EQ(PeerReceive(), f);
    octets += f.size();
  }
  ASSERT_TRUE(TestDriver::SpinUntil([&] { return driver_->ReapTx() > 0 && driver_->TxIdle(); }) || driver_->TxIdle());
  EXPECT_EQ(nic_->stats()[kNicStatTxFrames], 10u);
  EXPECT_EQ(nic_->stats()[kNicStatTxOctets], octets);
  EXPECT_EQ(nic_->registers().stats[kNicStatTxFrames].load(), 10u);
  EXPECT_EQ(nic_->registers().tx_head.load(), 10u);
  EXPECT_NE(driver_->WaitInterrupt(1000) & kNicIntTxDone, 0u);
  EXPECT_EQ(nic_->faults(), 0u);
}

TEST_F(NicTest, FramesFromThePeerLandInTheRxRing) {
  ASSERT_TRUE(driver_->Open());
  auto frame = MakeFrame(kNicMac, kPeerMac, 0x0800, 100);
  SendFromPeer(frame);
  EXPECT_NE(driver_->WaitInterrupt(2000) & kNicIntRx, 0u);
  auto got = driver_->ReceiveOne();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, frame);
  EXPECT_EQ(nic_->stats()[kNicStatRxFrames], 1u);
  EXPECT_EQ(nic_->stats()[kNicStatRxOctets], frame.size());
  EXPECT_EQ(nic_->registers().rx_head.load(), 1u);
}

struct FilterCase {
  const char* name;
  uint32_t rx_ctrl;
  uint64_t dst;
  bool accepted;
};

class NicFilterTest : public NicTest, public ::testing::WithParamInterface<FilterCase> {};

TEST_P(NicFilterTest, AcceptsExactlyWhatRxCtrlAndTheTableSay) {
  const FilterCase& c = GetParam();
  ASSERT_TRUE(driver_->Open(c.rx_ctrl));
  NicRegisters& r = nic_->registers();
  r.mc_table[0].store(kGroupA);
  r.mc_count.store(1);
  ASSERT_TRUE(driver_->Commit());
  SendFromPeer(MakeFrame(c.dst, kPeerMac, 0x0800, 60));
  auto got = driver_->ReceiveOne(c.accepted ? 2000 : 50);
  EXPECT_EQ(got.has_value(), c.accepted);
  EXPECT_EQ(nic_->stats()[kNicStatRxFiltered], c.accepted ? 0u : 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Filters, NicFilterTest,
    ::testing::Values(FilterCase{"unicast_to_us", kNicRxUnicast, kNicMac, true},
                      FilterCase{"unicast_off", 0, kNicMac, false},
                      FilterCase{"unicast_to_other", kNicRxUnicast | kNicRxBroadcast, kOtherMac, false},
                      FilterCase{"promiscuous_other", kNicRxPromiscuous, kOtherMac, true},
                      FilterCase{"broadcast_on", kNicRxBroadcast, kBroadcast, true},
                      FilterCase{"broadcast_off", kNicRxUnicast, kBroadcast, false},
                      FilterCase{"multicast_in_table", 0, kGroupA, true},
                      FilterCase{"multicast_not_in_table", kNicRxUnicast, kGroupB | 1, false},
                      FilterCase{"multicast_promiscuous", kNicRxMulticastPromiscuous, kGroupB | 1, true}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(NicTest, FramesLongerThanTheMtuAreErrorsUntilTheMtuGrows) {
  ASSERT_TRUE(driver_->Open());
  auto jumbo = MakeFrame(kNicMac, kPeerMac, 0x0800, 4000);
  SendFromPeer(jumbo);
  EXPECT_FALSE(driver_->ReceiveOne(50).has_value());
  EXPECT_EQ(nic_->stats()[kNicStatRxErrors], 1u);

  nic_->registers().mtu.store(9000);
  ASSERT_TRUE(driver_->Commit());
  SendFromPeer(jumbo);
  auto got = driver_->ReceiveOne();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->size(), jumbo.size());
}

TEST_F(NicTest, FramesWithoutAnRxDescriptorCountAsMissed) {
  ASSERT_TRUE(driver_->Open());  // gives 63 of 64 descriptors
  auto frame = MakeFrame(kNicMac, kPeerMac, 0x0800, 60);
  for (int i = 0; i < 70; ++i) SendFromPeer(frame);
  EXPECT_EQ(nic_->stats()[kNicStatRxFrames], 63u);
  EXPECT_EQ(nic_->stats()[kNicStatRxMissed], 7u);
  EXPECT_NE(driver_->WaitInterrupt(1000) & kNicIntRxMissed, 0u);
  // Recycling one buffer makes room for one more frame.
  ASSERT_TRUE(driver_->PollRx().has_value());
  SendFromPeer(frame);
  EXPECT_EQ(nic_->stats()[kNicStatRxFrames], 64u);
}

TEST_F(NicTest, LinkFlapUpdatesStatusRaisesInterruptAndDropsTransmits) {
  ASSERT_TRUE(driver_->Open());
  driver_->WaitInterrupt(0);
  nic_->SetLink(LinkState::kDown);
  EXPECT_EQ(nic_->registers().status.load() & kNicStatusLinkUp, 0u);
  EXPECT_NE(driver_->WaitInterrupt(1000) & kNicIntLinkChange, 0u);

  auto frame = MakeFrame(kPeerMac, kNicMac, 0x88B5, 60);
  ASSERT_TRUE(driver_->Transmit(frame.data(), frame.size()));
  driver_->Flush();
  uint32_t errors = 0;
  ASSERT_TRUE(TestDriver::SpinUntil([&] {
    driver_->ReapTx(&errors);
    return driver_->TxIdle();
  }));
  EXPECT_EQ(errors, 0u);  // completed normally, but lost on the wire
  EXPECT_EQ(nic_->stats()[kNicStatTxErrors], 1u);
  EXPECT_EQ(peer_->received(), 0u);

  nic_->SetLink(LinkState::kUp);
  EXPECT_NE(nic_->registers().status.load() & kNicStatusLinkUp, 0u);
  EXPECT_NE(driver_->WaitInterrupt(1000) & kNicIntLinkChange, 0u);
}

TEST_F(NicTest, PullingTheWireTellsBothEnds) {
  ASSERT_TRUE(driver_->Open());
  auto& port = static_cast<WirePort&>(peer_->port());
  port.SetLink(LinkState::kDown);
  EXPECT_EQ(nic_->link(), LinkState::kDown);
  EXPECT_EQ(peer_->link(), LinkState::kDown);
  port.SetLink(LinkState::kUp);
  EXPECT_EQ(nic_->link(), LinkState::kUp);
}

TEST_F(NicTest, MaskedCausesDoNotSignalUntilUnmasked) {
  ASSERT_TRUE(driver_->Open(kNicRxUnicast, /*int_mask=*/0));
  SendFromPeer(MakeFrame(kNicMac, kPeerMac, 0x0800, 60));
  EXPECT_EQ(nic_->interrupts_signalled(), 0u);
  EXPECT_NE(nic_->registers().int_cause.load() & kNicIntRx, 0u);

  nic_->registers().int_mask_set.fetch_or(kNicIntRx);
  ASSERT_TRUE(driver_->Commit());
  EXPECT_EQ(nic_->registers().int_mask.load(), kNicIntRx);
  EXPECT_EQ(nic_->interrupts_signalled(), 1u);  // the pending cause fires on unmask

  nic_->registers().int_mask_clear.fetch_or(kNicIntRx);
  ASSERT_TRUE(driver_->Commit());
  EXPECT_EQ(nic_->registers().int_mask.load(), 0u);
}

TEST_F(NicTest, PendingCauseSuppressesFurtherSignals) {
  ASSERT_TRUE(driver_->Open());
  auto frame = MakeFrame(kNicMac, kPeerMac, 0x0800, 60);
  SendFromPeer(frame);
  SendFromPeer(frame);
  SendFromPeer(frame);
  EXPECT_EQ(nic_->interrupts_signalled(), 1u);
  nic_->registers().int_cause.exchange(0);  // acknowledge
  SendFromPeer(frame);
  EXPECT_EQ(nic_->interrupts_signalled(), 2u);
}

TEST_F(NicTest, ResetRestoresPowerOnValuesAndClearsStatistics) {
  ASSERT_TRUE(driver_->Open(kNicRxPromiscuous));
  NicRegisters& r = nic_->registers();
  r.mac_lo.store(NicMacLo(kOtherMac));
  r.mac_hi.store(NicMacHi(kOtherMac));
  r.mtu.store(4000);
  ASSERT_TRUE(driver_->Commit());
  SendFromPeer(MakeFrame(kOtherMac, kPeerMac, 0x0800, 60));
  ASSERT_TRUE(driver_->ReceiveOne().has_value());
  ASSERT_NE(nic_->snapshot().mac, kNicMac);

  nic_->Reset();
  NicSnapshot s = nic_->snapshot();
  EXPECT_EQ(s.mac, kNicMac);
  EXPECT_EQ(s.mtu, kNicDefaultMtu);
  EXPECT_EQ(s.rx_ctrl, 0u);
  EXPECT_EQ(s.int_mask, 0u);
  EXPECT_EQ(s.ctrl_enables, 0u);
  EXPECT_EQ(ReadRawSnapshot(r), s);
  EXPECT_EQ(nic_->stats()[kNicStatRxFrames], 0u);
  EXPECT_EQ(r.stats[kNicStatRxFrames].load(), 0u);
  EXPECT_EQ(r.int_cause.load(), 0u);

  // DMA is stopped: frames are missed until a driver programs the device.
  SendFromPeer(MakeFrame(kNicMac, kPeerMac, 0x0800, 60));
  EXPECT_EQ(nic_->stats()[kNicStatRxFrames], 0u);
  driver_ = MakeDriver();
  ASSERT_TRUE(driver_->Open());
  SendFromPeer(MakeFrame(kNicMac, kPeerMac, 0x0800, 60));
  EXPECT_TRUE(driver_->ReceiveOne().has_value());
}

TEST_F(NicTest, SoftwareResetThroughCtrlClearsTheResetBit) {
  ASSERT_TRUE(driver_->Open());
  ASSERT_TRUE(driver_->SoftwareReset());
  EXPECT_EQ(nic_->snapshot().ctrl_enables, 0u);
  EXPECT_EQ(nic_->registers().status.load() & (kNicStatusTxEnabled | kNicStatusRxEnabled), 0u);
}

TEST_F(NicTest, SnapshotAfterReprogrammingEqualsSnapshotBeforeReset) {
  auto program = [&](TestDriver& d) {
    ASSERT_TRUE(d.Open(kNicRxUnicast | kNicRxPromiscuous, kNicIntRx | kNicIntLinkChange));
    NicRegisters& r = nic_->registers();
    r.mac_lo.store(NicMacLo(kOtherMac));
    r.mac_hi.store(NicMacHi(kOtherMac));
    r.mtu.store(2000);
    r.mc_table[0].store(kGroupA);
    r.mc_table[1].store(kGroupB | 1);
    r.mc_count.store(2);
    ASSERT_TRUE(d.Commit());
  };
  program(*driver_);
  const NicSnapshot before = nic_->snapshot();
  EXPECT_TRUE(before.promiscuous());
  EXPECT_EQ(before.mc_count, 2u);
  EXPECT_EQ(ReadRawSnapshot(nic_->registers()), before);

  nic_->Reset();
  EXPECT_NE(nic_->snapshot(), before);
  driver_ = MakeDriver();
  program(*driver_);
  EXPECT_EQ(nic_->snapshot(), before);
}

TEST_F(NicTest, AnIdleDeviceSleepsAndAsksForTheDoorbell) {
  ASSERT_TRUE(driver_->Open());
  ASSERT_TRUE(TestDriver::SpinUntil([&] { return nic_->registers().device_idle.load() == 1; }));
  // Flush() sees device_idle and rings; the sleeping device wakes and sends.
  auto frame = MakeFrame(kPeerMac, kNicMac, 0x88B5, 60);
  ASSERT_TRUE(driver_->Transmit(frame.data(), frame.size()));
  driver_->Flush();
  EXPECT_EQ(PeerReceive(), frame);
}

TEST_F(NicTest, StatisticsOutliveTheDriver) {
  ASSERT_TRUE(driver_->Open());
  SendFromPeer(MakeFrame(kNicMac, kPeerMac, 0x0800, 60));
  ASSERT_TRUE(driver_->ReceiveOne().has_value());
  driver_.reset();  // the driver dies; nobody resets the device yet
  EXPECT_EQ(nic_->stats()[kNicStatRxFrames], 1u);
  EXPECT_EQ(nic_->registers().stats[kNicStatRxFrames].load(), 1u);
}

TEST_F(NicTest, DriverCanProgramTheDeviceThroughItsOwnMapping) {
  Resources res = nic_->resources();
  auto region = ipc::SharedMemory::Map(UniqueFd(::dup(res.region_fd)), res.region_size);
  ASSERT_TRUE(region.has_value());
  auto* regs = (*region)->at<NicRegisters>(res.registers_offset);
  TestDriver d(*regs, (*region)->data() + res.dma_offset, res.doorbell_fd, res.interrupt_fd);
  ASSERT_TRUE(d.Open());
  auto frame = MakeFrame(kPeerMac, kNicMac, 0x88B5, 200);
  ASSERT_TRUE(d.Transmit(frame.data(), frame.size()));
  d.Flush();
  EXPECT_EQ(PeerReceive(), frame);
}

TEST(NicPairTest, TwoNicsOnOneWireExchangeFrames) {
  auto ports = WirePort::CreatePair();
  ASSERT_TRUE(ports.has_value());
  auto a = Nic::Create({.name = "nic-a", .permanent_mac = kNicMac}, std::move(ports->first));
  auto b = Nic::Create({.name = "nic-b", .permanent_mac = kPeerMac}, std::move(ports->second));
  ASSERT_TRUE(a.has_value() && b.has_value());
  TestDriver da((*a)->registers(), (*a)->dma(), (*a)->doorbell().fd(), (*a)->interrupt().fd());
  TestDriver db((*b)->registers(), (*b)->dma(), (*b)->doorbell().fd(), (*b)->interrupt().fd());
  (*a)->Start();
  (*b)->Start();
  ASSERT_TRUE(da.Open());
  ASSERT_TRUE(db.Open());
  for (int i = 0; i < 200; ++i) {
    auto to_b = MakeFrame(kPeerMac, kNicMac, 0x88B5, 60, uint8_t(i));
    auto to_a = MakeFrame(kNicMac, kPeerMac, 0x88B5, 60, uint8_t(i));
    ASSERT_TRUE(da.Transmit(to_b.data(), to_b.size()));
    ASSERT_TRUE(db.Transmit(to_a.data(), to_a.size()));
    da.Flush();
    db.Flush();
    auto got_b = db.ReceiveOne();
    auto got_a = da.ReceiveOne();
    ASSERT_TRUE(got_a && got_b);
    EXPECT_EQ(*got_b, to_b);
    EXPECT_EQ(*got_a, to_a);
    TestDriver::SpinUntil([&] {
      da.ReapTx();
      db.ReapTx();
      return da.TxIdle() && db.TxIdle();
    });
  }
  EXPECT_EQ((*a)->stats()[kNicStatRxFrames], 200u);
  EXPECT_EQ((*b)->stats()[kNicStatRxFrames], 200u);
}

TEST(NicRunOnceTest, DeviceWorkOnTheCallersThread) {
  auto ports = WirePort::CreatePair();
  ASSERT_TRUE(ports.has_value());
  auto nic = Nic::Create({.permanent_mac = kNicMac}, std::move(ports->first));
  auto peer = PeerEndpoint::Create(std::move(ports->second));
  ASSERT_TRUE(nic.has_value() && peer.has_value());
  TestDriver d((*nic)->registers(), (*nic)->dma(), (*nic)->doorbell().fd(), (*nic)->interrupt().fd());
  ASSERT_TRUE(d.Open(kNicRxUnicast, TestDriver::kAllInterrupts, TestDriver::Wait::kNo));
  EXPECT_EQ((*nic)->RunOnce(), 0u);
  EXPECT_EQ((*nic)->snapshot().ctrl_enables, kNicCtrlTxEnable | kNicCtrlRxEnable);
  auto frame = MakeFrame(kPeerMac, kNicMac, 0x88B5, 60);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(d.Transmit(frame.data(), frame.size()) || i >= 63);
  d.Flush();
  EXPECT_EQ((*nic)->RunOnce(), 63u);  // a 64-slot ring holds 63
  EXPECT_EQ((*peer)->received(), 63u);
  EXPECT_EQ(d.ReapTx(), 63u);
}

TEST(NicCreateTest, RefusesBadOptions) {
  auto ports = WirePort::CreatePair();
  ASSERT_TRUE(ports.has_value());
  EXPECT_FALSE(Nic::Create({.permanent_mac = 0x1}, std::move(ports->first)).has_value());
  EXPECT_FALSE(Nic::Create({}, nullptr).has_value());
}

}  // namespace
}  // namespace umbra::hw::nic
