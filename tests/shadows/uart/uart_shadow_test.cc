// The uart class end to end: the emulated UART, real driver processes that
// crash, hang and double-fault, and the shadow keeping the byte stream whole.
#include "shadows/uart/uart_shadow.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "shadows/registry.h"
#include "tests/shadows/uart/uart_fixture.h"

namespace umbra::shadows::uart {
namespace {

using namespace fixture;

TEST_F(UartShadowTest, StreamArrivesWholeInOrderWhileTheDriverIsKilledManyTimes) {
  // Four writes in flight: each crash catches several.
  auto s = Make(Options(), RecoveryMode::kShadow, {.writes_in_flight = 4});
  OpenWithLine(*s);
  std::atomic<uint64_t> written{0};
  std::atomic<bool> stop{false}, writer_done{false};
  std::atomic<int> write_errors{0};
  std::thread writer([&] {
    std::vector<std::byte> chunk(1000);
    uint64_t pos = 0;
    while (!stop || pos < (1u << 20)) {
      for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = StreamByte(pos + i);
      auto n = s->Write(chunk, 10 * kSec);
      if (!n) {
        ++write_errors;
        break;
      }
      // A partial write (timeout) would leave a hole: write the rest next.
      pos += *n;
      written = pos;
      if (*n < chunk.size()) ++write_errors;
    }
    if (!s->Drain(30 * kSec)) ++write_errors;
    writer_done = true;
  });
  uint64_t mismatches = 0, received = 0;
  std::thread far_end([&] { received = VerifyAtFarEnd(written, writer_done, &mismatches); });

  std::mt19937 rng(11);
  const int signals[] = {SIGSEGV, SIGABRT, SIGKILL, SIGSTOP};  // SIGSTOP: a hang
  for (int i = 0; i < 40; ++i) {
    usleep(std::uniform_int_distribution<int>(1000, 15000)(rng));
    KillAndRecover(*s, signals[i % 4]);
    EXPECT_EQ(uart_->line_config(), AsLineConfig(kLine)) << "replayed into the registers, recovery " << i;
    EXPECT_EQ(s->DriverLine().value_or(LineSettings{}), kLine);
  }
  stop = true;
  writer.join();
  far_end.join();
  EXPECT_EQ(write_errors, 0);
  EXPECT_GE(written.load(), 1u << 20);
  EXPECT_EQ(received, written.load()) << "no byte lost or duplicated";
  EXPECT_EQ(mismatches, 0u) << "every byte in order";
  EXPECT_EQ(uart_->line().framing_errors(), 0u);
  EXPECT_EQ(s->bytes_on_line(), written.load());
  auto records = s->recoveries();
  ASSERT_GE(records.size(), 40u) << "a loaded machine may add a missed heartbeat";
  uint64_t resubmitted = 0;
  std::vector<int64_t> recovery_us;
  for (const auto& r : records) {
    EXPECT_TRUE(r.succeeded);
    resubmitted += r.resubmitted;
    recovery_us.push_back((r.passive_ns - r.detected_ns) / 1000);
  }
  EXPECT_GT(resubmitted, 0u) << "some crashes caught writes in flight";
  // Figures for the record, not assertions.
  std::sort(recovery_us.begin(), recovery_us.end());
  std::printf("uart: %zu recoveries, detect->passive median %lld us, max %lld us; %llu bytes resent, %llu written\n",
              recovery_us.size(), static_cast<long long>(recovery_us[recovery_us.size() / 2]),
              static_cast<long long>(recovery_us.back()), static_cast<unsigned long long>(resubmitted),
              static_cast<unsigned long long>(written.load()));
}

// Writes `total` stream bytes through the port while the far end verifies
// them; returns {written, received, mismatches}.
struct StreamResult {
  uint64_t written = 0, received = 0, mismatches = 0;
};

class UartFailpointTest : public UartShadowTest {
 protected:
  StreamResult RunStream(UartShadow& s, uint64_t total) {
    std::atomic<uint64_t> written{0};
    std::atomic<bool> writer_done{false};
    std::thread writer([&] {
      std::vector<std::byte> chunk(4096);
      uint64_t pos = 0;
      while (pos < total) {
        for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = StreamByte(pos + i);
        auto n = s.Write(std::span(chunk).first(std::min<uint64_t>(chunk.size(), total - pos)), 10 * kSec);
        if (!n) break;
        pos += *n;
        written = pos;
      }
      EXPECT_TRUE(s.Drain(30 * kSec).has_value());
      writer_done = true;
    });
    StreamResult r;
    r.received = VerifyAtFarEnd(written, writer_done, &r.mismatches);
    writer.join();
    r.written = written;
    return r;
  }
};

TEST_F(UartFailpointTest, StreamSurvivesCrashesInjectedInsideTheDriverTxPath) {
  auto s = Make(Options(), RecoveryMode::kShadow, {.writes_in_flight = 4});
  OpenWithLine(*s);
  // Armed in this driver and every replacement: a crash in 1% of writes.
  ASSERT_TRUE(host_->SetFailpoints("seed=5;uart.tx=1%segfault").has_value());
  const StreamResult r = RunStream(*s, 1u << 20);
  EXPECT_EQ(r.written, 1u << 20);
  EXPECT_EQ(r.received, 1u << 20);
  EXPECT_EQ(r.mismatches, 0u);
  EXPECT_GT(s->recoveries().size(), 3u) << "the failpoint fired";
  EXPECT_EQ(uart_->line_config(), AsLineConfig(kLine));
}

// With the default single write in flight, nothing follows a failed write
// onto the line.
TEST_F(UartFailpointTest, WriteErrorsAreTurnedIntoRestartsWithoutLosingBytes) {
  auto s = Make(Options());
  OpenWithLine(*s);
  ASSERT_TRUE(host_->SetFailpoints("seed=9;uart.tx=2%error").has_value());
  const StreamResult r = RunStream(*s, 256u << 10);
  EXPECT_EQ(r.received, 256u << 10);
  EXPECT_EQ(r.mismatches, 0u);
  auto records = s->recoveries();
  ASSERT_GT(records.size(), 1u) << "each failed write restarted the driver";
  EXPECT_EQ(records[0].detection.reason, runtime::DetectReason::kSignal);
  EXPECT_EQ(records[0].detection.code, SIGKILL) << "killed by the shadow, not crashed";
}

TEST_F(UartFailpointTest, AStalledTxRingIsAHangTheDeadlineTurnsIntoARestart) {
  auto o = Options();
  o.request_deadline_ns = 200 * kMs;
  auto s = Make(std::move(o));
  OpenWithLine(*s);
  // A tail far past the ring: the UART refuses it and transmits nothing more.
  ASSERT_TRUE(host_->SetFailpoints("seed=3;uart.tx=3%bad_register").has_value());
  const StreamResult r = RunStream(*s, 32u << 10);
  EXPECT_EQ(r.received, 32u << 10);
  EXPECT_EQ(r.mismatches, 0u);
  EXPECT_GT(uart_->counters().ring_pointer_faults, 0u) << "the device refused the bad tails";
  bool deadline = false;
  for (const auto& rec : s->recoveries()) deadline |= rec.detection.reason == runtime::DetectReason::kRequestDeadline;
  EXPECT_TRUE(deadline);
}

TEST_F(UartFailpointTest, ADivisorTheDeviceRefusesIsReportedAndTheOldSettingsStay) {
  auto s = Make(Options());
  OpenWithLine(*s);
  ASSERT_TRUE(host_->SetFailpoints("uart.set_line=1*bad_register").has_value());
  auto r = s->SetLine(kOdd7);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_NE(r.error().message.find("refused"), std::string::npos) << r.error().message;
  EXPECT_EQ(s->line(), kLine) << "the log keeps what the device runs";
  EXPECT_EQ(uart_->line_config(), AsLineConfig(kLine));
  EXPECT_EQ(uart_->counters().line_config_faults, 1u);
  ASSERT_TRUE(s->SetLine(kOdd7).has_value()) << "the next one goes through";
  EXPECT_EQ(uart_->line_config(), AsLineConfig(kOdd7));
}

TEST_F(UartShadowTest, PacedLineRunsAtTheReplayedBaudRate) {
  // A real-speed line: 8 KiB at 115200 baud 8E1 (11 bits a character) takes
  // at least 0.78 s, and a crash in the middle changes nothing on the wire.
  auto o = Options();
  uart_ = *hw::uart::UartDevice::Create({.name = "ttyS0", .paced = true});
  uart_->Start();
  o.hw = uart_.get();
  host_ = *sup_.AddDevice(std::move(o));
  auto s = *UartShadow::Create(*host_, {});
  s->ConnectDevice(LinkTo(*uart_));
  s->Start();
  ASSERT_TRUE(s->WaitUntilPassive(10 * kSec).has_value());
  OpenWithLine(*s);
  std::vector<std::byte> data(8192);
  for (size_t i = 0; i < data.size(); ++i) data[i] = StreamByte(i);
  const int64_t start = MonotonicNanos();
  ASSERT_EQ(s->Write(data, kSec).value_or(0), data.size());
  usleep(300'000);
  KillAndRecover(*s, SIGKILL);
  std::vector<std::byte> got(data.size());
  size_t k = 0;
  while (k < got.size()) {
    const size_t n = uart_->line().Receive(std::span(got).subspan(k), 2 * kSec);
    ASSERT_GT(n, 0u);
    k += n;
  }
  EXPECT_GE(MonotonicNanos() - start, 700 * kMs) << "not faster than the line";
  EXPECT_EQ(got, data);
  usleep(50'000);
  EXPECT_EQ(uart_->line().received_total(), data.size()) << "nothing sent twice";
}

TEST_F(UartShadowTest, ReadsResumeAfterRecoveryWithEveryByteTheFarEndSent) {
  auto s = Make(Options());
  OpenWithLine(*s);
  auto send = [&](uint64_t from, size_t n) {
    std::vector<std::byte> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = StreamByte(from + i);
    ASSERT_EQ(uart_->line().Send(v, kSec), n);
  };
  auto read_all = [&](uint64_t from, size_t n) {
    std::vector<std::byte> buf(n);
    size_t got = 0;
    while (got < n) {
      auto r = s->Read(std::span(buf).subspan(got), 5 * kSec);
      ASSERT_TRUE(r.has_value()) << r.error().ToString();
      got += *r;
    }
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(buf[i], StreamByte(from + i)) << i;
  };
  send(0, 3000);
  read_all(0, 3000);
  host_->Kill(SIGSTOP);
  while (s->passive()) usleep(100);
  send(3000, 3000);  // while the driver is down: the bytes wait on the line
  read_all(3000, 3000);
  KillAndRecover(*s, SIGKILL);
  send(6000, 100);
  read_all(6000, 100);
  EXPECT_EQ(uart_->registers()->framing_errors.load(), 0u);
}

// Bytes that reach the UART's RX ring while the driver is hung (SIGSTOP, not
// detected yet) or once it is dead (SIGKILL, SIGSEGV on the stopped driver)
// used to be discarded by the device reset between two drivers. The far end
// keeps sending through every fault; the application must read every byte
// exactly once, in order.
TEST_F(UartShadowTest, BytesReceivedWhileTheDriverIsHungOrDeadAreReadExactlyOnceInOrder) {
  auto o = Options();
  // Long enough that a stopped driver is still the current one when the
  // test kills it (a loaded machine takes a while to send 1500 bytes).
  o.heartbeat_period_ns = 200 * kMs;
  auto s = Make(std::move(o));
  OpenWithLine(*s);
  std::atomic<uint64_t> sent{0};
  std::atomic<bool> sender_done{false};
  uint64_t got = 0, mismatches = 0, extra = 0;
  std::thread reader;
  // Every way out of the test, a failed assertion too, ends the reader.
  struct JoinReader {
    std::thread& t;
    std::atomic<bool>& done;
    ~JoinReader() {
      done = true;
      if (t.joinable()) t.join();
    }
  } join_reader{reader, sender_done};
  reader = std::thread([&] {
    std::vector<std::byte> buf(4096);
    while (!sender_done || got < sent) {
      auto n = s->Read(buf, 5 * kSec);
      if (!n) break;  // nothing for 5 s: bytes were lost
      for (size_t i = 0; i < *n; ++i) mismatches += buf[i] != StreamByte(got + i) ? 1 : 0;
      got += *n;
    }
    auto more = s->Read(buf, 200 * kMs);
    extra = more ? *more : 0;
  });
  auto send = [&](size_t n) {
    std::vector<std::byte> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = StreamByte(sent + i);
    ASSERT_EQ(uart_->line().Send(v, 5 * kSec), n);
    sent += n;
  };
  auto wait_taken = [&] {  // the bytes left the line: they are in the RX ring
    const int64_t deadline = MonotonicNanos() + kSec;
    while (uart_->line().pending_to_device() > 0 && MonotonicNanos() < deadline) usleep(50);
  };
  const int faults[] = {SIGSTOP, SIGKILL, SIGSEGV, SIGSTOP, SIGKILL, SIGSEGV};
  for (int sig : faults) {
    send(700);
    usleep(5000);
    ASSERT_TRUE(host_->WaitUntilRunning(10 * kSec).has_value()) << "not stopped in its handshake";
    const size_t before = s->recoveries().size();
    const pid_t hung = host_->driver_pid();
    host_->Kill(SIGSTOP);  // hung: the watchdog notices after missed heartbeats
    send(1500);
    wait_taken();
    if (sig != SIGSTOP) {
      // Dead, with received bytes in the ring. By its pid: on a slow machine
      // the watchdog may have replaced it already, and its successor must
      // not die too (that would be a double fault inside this recovery).
      ::kill(hung, sig);
      if (sig == SIGSEGV) ::kill(hung, SIGCONT);
      send(300);  // and more arriving before the device is reset
    }
    const int64_t deadline = MonotonicNanos() + 10 * kSec;
    while (s->recoveries().size() == before && MonotonicNanos() < deadline) usleep(100);
    ASSERT_GT(s->recoveries().size(), before) << "the fault was noticed";
    ASSERT_TRUE(s->WaitUntilPassive(10 * kSec).has_value());
  }
  send(500);
  sender_done = true;
  reader.join();
  EXPECT_EQ(got, sent.load()) << "every byte the far end sent was read";
  EXPECT_EQ(mismatches, 0u) << "in order, none twice";
  EXPECT_EQ(extra, 0u) << "nothing after the last byte";
  EXPECT_EQ(uart_->line().framing_errors(), 0u);
  EXPECT_GT(uart_->counters().rx_redelivered, 0u) << "the device kept unacknowledged bytes over the resets";
  const UartReceiveStats rx = s->receive_stats();
  EXPECT_EQ(rx.bytes, sent.load());
  EXPECT_EQ(rx.lost, 0u);
  std::printf("uart rx: %llu bytes, %llu put into the ring again, %llu delivered twice and dropped\n",
              static_cast<unsigned long long>(rx.bytes),
              static_cast<unsigned long long>(uart_->counters().rx_redelivered),
              static_cast<unsigned long long>(rx.duplicates));
}

TEST_F(UartShadowTest, WritesDuringRecoveryAreQueuedBoundedAndSentAfter) {
  auto s = Make(Options(), RecoveryMode::kShadow, {.tx_queue_bytes = 1024});
  OpenWithLine(*s);
  host_->Kill(SIGSTOP);  // a hang: noticed after two missed heartbeats
  while (s->passive()) usleep(100);
  std::vector<std::byte> data(4096);
  for (size_t i = 0; i < data.size(); ++i) data[i] = StreamByte(i);
  auto n = s->Write(data, 0);
  ASSERT_TRUE(n.has_value()) << "queued, not failed";
  EXPECT_EQ(*n, 1024u) << "bounded: the rest is back-pressure";
  auto rest = s->Write(std::span(data).subspan(*n), 10 * kSec);
  ASSERT_TRUE(rest.has_value());
  EXPECT_EQ(*n + *rest, data.size()) << "the writer waited for room";
  ASSERT_TRUE(s->Drain(10 * kSec).has_value());
  std::vector<std::byte> got(data.size());
  size_t k = 0;
  while (k < got.size()) {
    const size_t r = uart_->line().Receive(std::span(got).subspan(k), kSec);
    ASSERT_GT(r, 0u);
    k += r;
  }
  EXPECT_EQ(got, data);
  EXPECT_GT(s->recoveries().back().queued, 0u);
}

TEST_F(UartShadowTest, LineSettingsAreReplayedSoTheFarEndStillUnderstands) {
  auto s = Make(Options());
  OpenWithLine(*s, kOdd7);
  KillAndRecover(*s, SIGKILL);
  EXPECT_EQ(uart_->line_config(), AsLineConfig(kOdd7));
  EXPECT_EQ(s->line(), kOdd7);
  const std::string text = "replayed";
  ASSERT_TRUE(s->Write(std::as_bytes(std::span(text)), kSec).has_value());
  ASSERT_TRUE(s->Drain(5 * kSec).has_value());
  EXPECT_EQ(uart_->line().framing_errors(), 0u);
  EXPECT_EQ(uart_->line().received_total(), text.size());
}

// Restart-only: the new driver never hears the settings; the UART is back at
// 9600 8N1 and the far end sees garbage. The control for the test above.
TEST_F(UartShadowTest, WithoutReplayTheFarEndSeesFramingErrors) {
  const LineSettings odd7 = kOdd7;
  auto s = Make(Options(), RecoveryMode::kRestartOnly);
  OpenWithLine(*s, odd7);
  KillAndRecover(*s, SIGKILL);
  EXPECT_EQ(uart_->line_config(), LineConfig{});
  const std::string text = "garbled";
  ASSERT_TRUE(s->Write(std::as_bytes(std::span(text)), kSec).has_value());
  ASSERT_TRUE(s->Drain(5 * kSec).has_value());
  EXPECT_EQ(uart_->line().framing_errors(), text.size());
}

TEST_F(UartShadowTest, RefusesLineSettingsNoDriverCouldReplay) {
  auto s = Make(Options());
  auto r = s->SetLine({.baud = 12345});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  r = s->SetLine({.baud = 9600, .data_bits = 9});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(s->line(), LineSettings{}) << "nothing logged";
}

TEST_F(UartShadowTest, DoubleFaultDuringReplayRestartsRecovery) {
  auto o = Options(UMBRA_FAULTY_UART_DRIVER);
  o.settings["crash_set_line_on"] = "2,3";  // the first two replacements die replaying the line
  auto s = Make(std::move(o));
  OpenWithLine(*s);
  std::vector<std::byte> data(2000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = StreamByte(i);
  ASSERT_TRUE(s->Write(std::span(data).first(1000), kSec).has_value());
  KillAndRecover(*s, SIGKILL);
  ASSERT_TRUE(s->Write(std::span(data).subspan(1000), kSec).has_value());
  ASSERT_TRUE(s->Drain(10 * kSec).has_value());
  auto records = s->recoveries();
  ASSERT_EQ(records.size(), 1u) << "one recovery, several attempts";
  EXPECT_EQ(records[0].attempts, 3u);
  EXPECT_TRUE(records[0].succeeded);
  EXPECT_EQ(host_->instance(), 4u);
  EXPECT_EQ(uart_->line_config(), AsLineConfig(kLine));
  std::vector<std::byte> got(data.size());
  size_t k = 0;
  while (k < got.size()) {
    const size_t r = uart_->line().Receive(std::span(got).subspan(k), kSec);
    ASSERT_GT(r, 0u);
    k += r;
  }
  EXPECT_EQ(got, data);
}

TEST_F(UartShadowTest, BudgetSpentFailsEveryCallWithAClearError) {
  auto o = Options(UMBRA_FAULTY_UART_DRIVER);
  o.restart.budget = 2;
  o.restart.window_ns = 60 * kSec;
  o.settings["crash_set_line_on"] = "2,3,4,5,6";
  auto s = Make(std::move(o));
  OpenWithLine(*s);
  host_->Kill(SIGKILL);
  while (s->recoveries().empty()) usleep(100);
  ASSERT_FALSE(s->WaitUntilPassive(10 * kSec).has_value());
  EXPECT_EQ(s->state(), ShadowState::kFailed);
  EXPECT_NE(s->failure_reason().find("restart budget spent"), std::string::npos);
  const std::byte b[1] = {};
  auto w = s->Write(b, kSec);
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code, Errc::kDeviceFailed);
  EXPECT_NE(w.error().message.find("ttyS0 failed"), std::string::npos);
  std::byte out[1];
  auto r = s->Read(out, kSec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kDeviceFailed);
  auto l = s->SetLine(kLine);
  ASSERT_FALSE(l.has_value());
  EXPECT_EQ(l.error().code, Errc::kDeviceFailed);
}

TEST_F(UartShadowTest, RegistryFactoryBuildsTheClassAndRefusesBadSettings) {
  ShadowRegistry registry;
  ASSERT_TRUE(registry.Register("uart", CreateUartShadow).has_value());
  uart_ = *hw::uart::UartDevice::Create({.name = "ttyS1"});
  auto o = Options();
  o.hw = uart_.get();
  host_ = *sup_.AddDevice(std::move(o));
  auto bad = registry.Create("uart", *host_, {{"tx_queue_bytes", "lots"}});
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("tx_queue_bytes"), std::string::npos);
  EXPECT_FALSE(registry.Create("uart", *host_, {{"colour", "blue"}}).has_value());
  auto good = registry.Create("uart", *host_, {{"tx_queue_bytes", "4096"}});
  ASSERT_TRUE(good.has_value());
  EXPECT_EQ((*good)->class_name(), "uart");
  EXPECT_NE(dynamic_cast<Port*>(good->get()), nullptr);
}

}  // namespace
}  // namespace umbra::shadows::uart
