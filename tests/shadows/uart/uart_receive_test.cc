// The uart class's receive side under faults that used to lose or change
// bytes (issues 20 and 23): reads with a wrong length, lost read
// completions, and faults of several types following each other while the
// far end floods the line. The application must read every byte the far end
// sent, once, in order, and never a byte the far end did not send.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "tests/shadows/uart/uart_fixture.h"

namespace umbra::shadows::uart {
namespace {

using namespace fixture;

struct Received {
  uint64_t bytes = 0, mismatches = 0;
};

class UartReceiveTest : public UartShadowTest {
 protected:
  // The far end sends `total` stream bytes in `piece`-byte sends (`gap_us`
  // apart) while the application reads and checks them; `during` runs in
  // the meantime (faults), until the sender is done.
  template <class During>
  Received Flood(UartShadow& s, uint64_t total, size_t piece, int gap_us, During during) {
    std::atomic<bool> sent_all{false};
    std::thread sender([&] {
      std::vector<std::byte> v(piece);
      for (uint64_t pos = 0; pos < total;) {
        const size_t n = std::min<uint64_t>(piece, total - pos);
        for (size_t i = 0; i < n; ++i) v[i] = StreamByte(pos + i);
        const size_t put = uart_->line().Send(std::span(v).first(n), 10 * kSec);
        if (put == 0) break;
        pos += put;
        if (gap_us > 0) usleep(gap_us);
      }
      sent_all = true;
    });
    Received r;
    std::thread reader([&] {
      std::vector<std::byte> buf(4096);
      while (r.bytes < total) {
        auto n = s.Read(buf, 10 * kSec);
        if (!n) break;  // nothing for 10 s: bytes were lost
        for (size_t i = 0; i < *n; ++i) r.mismatches += buf[i] != StreamByte(r.bytes + i) ? 1 : 0;
        r.bytes += *n;
      }
    });
    during(sent_all);
    sender.join();
    reader.join();
    std::vector<std::byte> buf(256);
    auto more = s.Read(buf, 200 * kMs);
    EXPECT_FALSE(more.has_value()) << "bytes after the last one the far end sent";
    return r;
  }
};

// A read whose length the driver inflated while it still fits the 256-byte
// read buffer carries the buffer's stale tail. It passed about one run in
// 2,000 when it followed a reset (issue 23); here 3% of completions are
// inflated by 7 bytes while pieces smaller than a buffer arrive.
TEST_F(UartReceiveTest, ReadsWithAWrongLengthAreRefusedNeverPassedOn) {
  auto o = Options();
  o.request_deadline_ns = 500 * kMs;
  auto s = Make(std::move(o));
  OpenWithLine(*s);
  ASSERT_TRUE(host_->SetFailpoints("seed=4;sdk.complete=3%wrong_length(7)").has_value());
  const uint64_t total = 48 << 10;
  const Received r = Flood(*s, total, 100, 300, [](const std::atomic<bool>&) {});
  EXPECT_EQ(r.bytes, total) << "every byte the far end sent";
  EXPECT_EQ(r.mismatches, 0u) << "none changed, in order, none twice";
  const UartReceiveStats rx = s->receive_stats();
  EXPECT_GT(rx.impossible, 0u) << "the failpoint inflated reads and the shadow refused them";
  EXPECT_GT(s->recoveries().size(), 0u);
  EXPECT_EQ(rx.lost, 0u);
}

// Faults of several types every 30 ms while the far end keeps the RX ring
// full (issue 20: 1 KiB-aligned runs went missing when resets followed each
// other, because the UART held over only its last ring's worth), with 2% of
// read completions lost as well (the driver consumed their bytes).
TEST_F(UartReceiveTest, AFloodedReceiveSideLosesNothingAcrossFaultsInARow) {
  auto o = Options();
  o.request_deadline_ns = 300 * kMs;
  auto s = Make(std::move(o));
  OpenWithLine(*s);
  ASSERT_TRUE(host_->SetFailpoints("seed=6;sdk.complete=2%drop_completion").has_value());
  const uint64_t total = 1 << 20;
  size_t faults = 0;
  const Received r = Flood(*s, total, 4096, 2000, [&](const std::atomic<bool>& done) {
    const int signals[] = {SIGKILL, SIGSEGV, SIGABRT, SIGSTOP};
    while (!done) {
      usleep(30'000);
      if (!s->passive()) continue;  // one fault at a time: each recovery completes
      host_->Kill(signals[faults++ % 4]);
    }
  });
  EXPECT_EQ(r.bytes, total) << "every byte the far end sent";
  EXPECT_EQ(r.mismatches, 0u) << "in order, none twice";
  EXPECT_GE(faults, 4u) << "the transfer outlasted faults of every type";
  EXPECT_EQ(s->receive_stats().lost, 0u);
  std::printf("uart rx flood: %zu faults, %llu bytes put into the ring again, %llu duplicates dropped\n", faults,
              static_cast<unsigned long long>(uart_->counters().rx_redelivered),
              static_cast<unsigned long long>(s->receive_stats().duplicates));
}

}  // namespace
}  // namespace umbra::shadows::uart
