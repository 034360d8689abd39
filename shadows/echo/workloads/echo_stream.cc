#include "shadows/echo/workloads/echo_stream.h"

#include <vector>

namespace umbra::faultinject::campaign {
namespace {

constexpr int64_t kSec = 1'000'000'000;
constexpr uint64_t kTagEvery = 16;
constexpr size_t kMaxPayload = 256;

uint8_t PayloadByte(uint64_t seed, uint64_t unit, size_t i) {
  uint64_t x = seed ^ (unit * 0x9e3779b97f4a7c15ull) ^ (i * 0xbf58476d1ce4e5b9ull);
  x ^= x >> 29;
  return static_cast<uint8_t>(x);
}

}  // namespace

std::vector<SiteUse> EchoStreamWorkload::sites(uint64_t units) const {
  const uint64_t calls = units / kTagEvery + 1;
  return {{"sdk.request", units}, {"sdk.request.exit", units}, {"sdk.complete", units},
          {"sdk.call", calls},    {"sdk.call.exit", calls},    {std::string(kHostSite), units}};
}

Result<void> EchoStreamWorkload::SetUp(WorkloadContext& ctx) {
  runtime::DriverHostOptions o;
  o.device_name = "echo0";
  o.compatible = "umbra,echo";
  o.device_class = "echo";
  o.driver_binary = "umbra-driver-echo";
  o.data = {.ring_entries = 16, .buffer_size = kMaxPayload, .buffer_count = 16};
  host_ = UMBRA_TRY(ctx.AddDevice(std::move(o)));
  shadow_ = shadows::echo::EchoShadow::Create(*host_, ctx.mode());
  shadow_->Start();
  UMBRA_TRY(shadow_->WaitUntilPassive(5 * kSec));
  ctx.Watch(*shadow_);
  UMBRA_TRY(shadow_->SetTag("campaign"));
  return {};
}

WorkResult EchoStreamWorkload::Run(WorkloadContext& ctx) {
  WorkResult r;
  uint64_t mismatches = 0;
  std::vector<std::byte> data(kMaxPayload);
  auto error = [&r](const Error& e) {
    if (r.errors++ == 0) r.first_error = e.ToString();
  };
  for (uint64_t u = 0; u < ctx.units(); ++u) {
    if (u % kTagEvery == kTagEvery - 1) {
      if (auto t = shadow_->SetTag("tag-" + std::to_string(u)); !t) error(t.error());
    }
    const size_t len = 16 + PayloadByte(ctx.seed(), u, kMaxPayload) % (kMaxPayload - 15);
    for (size_t i = 0; i < len; ++i) data[i] = std::byte(PayloadByte(ctx.seed(), u, i));
    auto e = shadow_->Echo(std::span(data.data(), len), 5 * kSec);
    ++r.units_done;
    ctx.Progress(r.units_done);
    if (!e) {
      error(e.error());
      if (e.error().code == Errc::kDeviceFailed) break;
      continue;
    }
    for (size_t i = 0; i < len; ++i) {
      if (data[i] != ~std::byte(PayloadByte(ctx.seed(), u, i))) {
        ++mismatches;
        break;
      }
    }
  }
  // The check reads the driver directly.
  const std::string want = shadow_->Tag();
  const Result<std::string> have = ReadFromDriver<std::string>(*shadow_, [this] { return shadow_->DriverTag(); });
  const bool tag_ok = have && *have == want;
  r.verified = mismatches == 0 && r.units_done == ctx.units() && tag_ok;
  r.wrong_data = mismatches;
  r.verification = std::to_string(r.units_done) + "/" + std::to_string(ctx.units()) + " units, " +
                   std::to_string(mismatches) + " corrupted, driver tag " + (have ? "'" + *have + "'" : "unreadable") +
                   (tag_ok ? " matches" : " != '" + want + "'");
  return r;
}

void EchoStreamWorkload::TearDown() {
  if (shadow_) shadow_->Stop();
}

}  // namespace umbra::faultinject::campaign
