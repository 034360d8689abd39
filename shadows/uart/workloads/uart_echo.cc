#include "shadows/uart/workloads/uart_echo.h"

#include <atomic>
#include <thread>
#include <vector>

#include "shadows/uart/device_link.h"

namespace umbra::faultinject::campaign {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;
constexpr size_t kChunk = 64;
// An echo comes back in well under a millisecond; a recovery takes tens, but
// a hang (a read completion the driver lost) is detected only once the
// request is past its deadline (200 ms in campaigns), and the watchdog skips
// the ticks on which its own thread was starved: on a loaded machine that
// took longer than the 500 ms this used to be, and the run failed although
// the echo came after the recovery. An echo missing this long was lost.
constexpr int64_t kEchoTimeoutNs = 5 * kSec;
const shadows::uart::LineSettings kLine{
    .baud = 115200, .parity = shadows::uart::Parity::kEven, .data_bits = 8, .stop_bits = 1};

// The far end's view of the driver's settings.
hw::uart::LineConfig AsLineConfig(const shadows::uart::LineSettings& s) {
  return {.baud = s.baud,
          .parity = static_cast<hw::uart::Parity>(static_cast<uint32_t>(s.parity)),
          .data_bits = s.data_bits,
          .stop_bits = s.stop_bits};
}

std::byte StreamByte(uint64_t seed, uint64_t i) {
  uint64_t x = (seed ^ i) * 0x9E3779B97F4A7C15ull;
  x ^= x >> 29;
  return std::byte(static_cast<uint8_t>(x >> 7));
}

}  // namespace

UartEchoWorkload::~UartEchoWorkload() {
  shadow_.reset();
  if (uart_) uart_->Stop();
}

std::vector<SiteUse> UartEchoWorkload::sites(uint64_t units) const {
  // A write request per chunk; the echo comes back in one or two reads.
  return {{"sdk.request", units}, {"sdk.request.exit", units}, {"sdk.complete", units},        {"uart.tx", units},
          {"uart.rx", units},     {"uart.interrupt", units},   {std::string(kHostSite), units}};
}

Result<void> UartEchoWorkload::SetUp(WorkloadContext& ctx) {
  uart_ = UMBRA_TRY(hw::uart::UartDevice::Create({.name = "ttyS0"}));
  uart_->Start();
  runtime::DriverHostOptions o;
  o.device_name = "ttyS0";
  o.device_class = "uart";
  o.compatible = hw::uart::kCompatible;
  o.driver_binary = "umbra-driver-uart";
  o.data = {.ring_entries = 16, .buffer_size = 256, .buffer_count = 32};
  o.hw = uart_.get();
  host_ = UMBRA_TRY(ctx.AddDevice(std::move(o)));
  shadow_ = UMBRA_TRY(shadows::uart::UartShadow::Create(*host_, {}, ctx.mode()));
  // The device's receive positions let the shadow refuse a read length the
  // driver could not have produced and keep what it has not queued (the
  // device outlives the shadow).
  shadow_->ConnectDevice(shadows::uart::LinkTo(*uart_));
  shadow_->Start();
  UMBRA_TRY(shadow_->WaitUntilPassive(5 * kSec));
  UMBRA_TRY(shadow_->SetLine(kLine));
  uart_->line().set_far_end(AsLineConfig(kLine));
  UMBRA_TRY(shadow_->Open());
  ctx.Watch(*shadow_);
  return {};
}

WorkResult UartEchoWorkload::Run(WorkloadContext& ctx) {
  WorkResult r;
  auto error = [&r](const Error& e) {
    if (r.errors++ == 0) r.first_error = e.ToString();
  };
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> far_got{0}, far_sent{0};
  std::thread far_end([&] {
    std::vector<std::byte> buf(4096);
    while (!stop.load()) {
      const size_t n = uart_->line().Receive(buf, 2 * kMs);
      far_got += n;
      if (n > 0) far_sent += uart_->line().Send(std::span(buf).first(n), kSec);
    }
  });
  uint64_t mismatched = 0;
  std::vector<std::byte> out(kChunk), in(kChunk);
  for (uint64_t u = 0; u < ctx.units(); ++u) {
    for (size_t i = 0; i < kChunk; ++i) out[i] = StreamByte(ctx.seed(), u * kChunk + i);
    auto w = shadow_->Write(out, 2 * kSec);
    if (!w || *w < kChunk) {
      error(w ? Error{Errc::kTimeout, "short write"} : w.error());
      break;
    }
    size_t got = 0;
    while (got < kChunk) {
      auto n = shadow_->Read(std::span(in).subspan(got), kEchoTimeoutNs);
      if (!n) {
        error(n.error());
        break;
      }
      got += *n;
    }
    if (got < kChunk) break;
    if (in != out) ++mismatched;
    r.units_done = u + 1;
    ctx.Progress(r.units_done);
  }
  stop = true;
  far_end.join();
  const Result<shadows::uart::LineSettings> have =
      ReadFromDriver<shadows::uart::LineSettings>(*shadow_, [this] { return shadow_->DriverLine(); });
  const uint64_t framing = uart_->line().framing_errors();
  const bool line_ok = have && *have == kLine;
  r.verified = r.units_done == ctx.units() && mismatched == 0 && framing == 0 && line_ok;
  r.wrong_data = mismatched + framing;
  r.verification = std::to_string(r.units_done) + "/" + std::to_string(ctx.units()) + " chunks echoed, " +
                   std::to_string(mismatched) + " changed, " + std::to_string(framing) +
                   " framing errors, driver line " + (line_ok ? "as set" : "not as set") + "; far end got " +
                   std::to_string(far_got.load()) + " bytes, sent back " + std::to_string(far_sent.load()) + "; " +
                   ReceiveSummary();
  return r;
}

std::string UartEchoWorkload::ReceiveSummary() const {
  const shadows::uart::UartReceiveStats rx = shadow_->receive_stats();
  return "shadow received " + std::to_string(rx.bytes) + " (duplicates " + std::to_string(rx.duplicates) +
         ", refused reads " + std::to_string(rx.impossible) + " and gaps " + std::to_string(rx.gaps) + ", stale " +
         std::to_string(rx.stale) + ", rx lost=" + std::to_string(rx.lost) + "), uart rx_total " +
         std::to_string(uart_->registers()->rx_total.load(std::memory_order_acquire)) + ", shadow " +
         std::string(shadows::ShadowStateName(shadow_->state()));
}

void UartEchoWorkload::TearDown() {
  if (!shadow_) return;
  shadow_->Stop();
  shadow_.reset();  // before the Supervisor stops and destroys the host
}

}  // namespace umbra::faultinject::campaign
