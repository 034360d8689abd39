#include "shadows/net/class.h"

#include <charconv>

#include "runtime/hw/nic/nic.h"
#include "runtime/hw/nic/tap_backend.h"
#include "runtime/hw/nic/wire.h"
#include "shadows/net/net_shadow.h"
#include "shadows/net/workloads/file_transfer_workload.h"

namespace umbra::shadows {

namespace {

using machine::Setting;

// "02:00:00:00:00:01" → byte 0 in bits 0..7 (NicMacFromRegs layout).
Result<uint64_t> ParseMac(const std::string& text) {
  uint64_t mac = 0;
  if (text.size() != 17) return Fail(Errc::kInvalidArgument, "mac '" + text + "' is not xx:xx:xx:xx:xx:xx");
  for (int i = 0; i < 6; ++i) {
    if (i > 0 && text[i * 3 - 1] != ':') return Fail(Errc::kInvalidArgument, "mac '" + text + "' needs ':'");
    unsigned byte = 0;
    auto [end, ec] = std::from_chars(text.data() + i * 3, text.data() + i * 3 + 2, byte, 16);
    if (ec != std::errc() || end != text.data() + i * 3 + 2) {
      return Fail(Errc::kInvalidArgument, "mac '" + text + "' has a bad byte");
    }
    mac |= uint64_t(byte) << (8 * i);
  }
  if (mac & 1) return Fail(Errc::kInvalidArgument, "mac '" + text + "' is a multicast address");
  return mac;
}

Result<void> CheckNic(const machine::HardwareSpec& spec) {
  if (auto mac = Setting(spec, "mac"); !mac.empty()) UMBRA_TRY(ParseMac(mac));
  const std::string backend = Setting(spec, "backend", "wire");
  if (backend != "wire" && backend != "tap") {
    return Fail(Errc::kInvalidArgument, "backend '" + backend + "' is not wire or tap");
  }
  return {};
}

class NicOnWire final : public machine::NicHardware {
 public:
  NicOnWire(std::unique_ptr<hw::nic::Nic> nic, std::unique_ptr<hw::nic::PeerEndpoint> peer)
      : peer_(std::move(peer)), nic_(std::move(nic)) {}
  ~NicOnWire() override { nic_->Stop(); }
  hw::Device* device() override { return nic_.get(); }
  ipc::DataChannelOptions data_options() const override {
    return {.ring_entries = 256, .buffer_size = 2048, .buffer_count = 256};
  }
  hw::nic::Nic* nic() override { return nic_.get(); }
  hw::nic::PeerEndpoint* peer() override { return peer_.get(); }

 private:
  // Declared first so it is destroyed last: the NIC's backend thread may
  // still deliver to the peer until the NIC is stopped.
  std::unique_ptr<hw::nic::PeerEndpoint> peer_;
  std::unique_ptr<hw::nic::Nic> nic_;  // the device; owns its end of the wire or its TAP
};

Result<std::unique_ptr<machine::Hardware>> CreateNic(const machine::HardwareSpec& spec) {
  hw::nic::NicOptions o;
  o.name = spec.device;
  if (auto mac = Setting(spec, "mac"); !mac.empty()) o.permanent_mac = UMBRA_TRY(ParseMac(mac));
  const std::string backend = Setting(spec, "backend", "wire");
  if (backend == "tap") {
    hw::nic::TapOptions t;
    t.name = Setting(spec, "tap", "umbra-" + spec.device);
    t.ipv4_address = Setting(spec, "tap_address");
    auto tap = UMBRA_TRY(hw::nic::TapBackend::Create(std::move(t)));
    auto nic = UMBRA_TRY(hw::nic::Nic::Create(std::move(o), std::move(tap)));
    return std::unique_ptr<machine::Hardware>(new NicOnWire(std::move(nic), nullptr));
  }
  UMBRA_TRY(CheckNic(spec));
  auto ports = UMBRA_TRY(hw::nic::WirePort::CreatePair());
  auto nic = UMBRA_TRY(hw::nic::Nic::Create(std::move(o), std::move(ports.first)));
  auto peer = UMBRA_TRY(hw::nic::PeerEndpoint::Create(std::move(ports.second), {.queue_frames = 1024}));
  return std::unique_ptr<machine::Hardware>(new NicOnWire(std::move(nic), std::move(peer)));
}

}  // namespace

// The hardware's keys, then its driver's (drivers/nic/), then "failpoints"
// (armed in the driver before probe).
Result<void> RegisterNetClass(ClassRegistry& registry) {
  UMBRA_TRY(registry.AddHardware("umbra,e1000-emu", CreateNic,
                                 {{"mac", "backend", "tap", "tap_address", "rx_expire_ms", "failpoints"}, CheckNic}));
  UMBRA_TRY(registry.AddShadow("net", net::CreateNetShadow, net::NetSettings().specs()));
  UMBRA_TRY(registry.AddWorkload<faultinject::campaign::FileTransferWorkload>());
  return {};
}

}  // namespace umbra::shadows
