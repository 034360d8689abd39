#include "machine/hardware.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "runtime/hw/disk/disk_device.h"
#include "runtime/hw/disk/disk_regs.h"
#include "runtime/hw/nic/nic.h"
#include "runtime/hw/nic/tap_backend.h"
#include "runtime/hw/nic/wire.h"
#include "runtime/hw/sound/sound_card.h"
#include "runtime/hw/sound/wav_speaker.h"
#include "runtime/hw/uart/uart_device.h"
#include "runtime/hw/uart/uart_regs.h"

namespace umbra::machine {

Result<void> HardwareRegistry::Register(const std::string& compatible, HardwareFactory factory,
                                        HardwareSettings settings) {
  if (!factories_.emplace(compatible, Entry{std::move(factory), std::move(settings)}).second) {
    return Fail(Errc::kAlreadyExists, "hardware for " + compatible + " is registered twice");
  }
  return {};
}

Result<std::unique_ptr<Hardware>> HardwareRegistry::Create(const HardwareSpec& spec) const {
  for (const std::string& c : spec.compatible) {
    auto it = factories_.find(c);
    if (it == factories_.end()) continue;
    auto hw = it->second.factory(spec);
    if (!hw) return Fail(hw.error().code, spec.device + ": " + hw.error().message);
    return hw;
  }
  return std::unique_ptr<Hardware>();
}

Result<void> HardwareRegistry::CheckSettings(const HardwareSpec& spec) const {
  for (const std::string& c : spec.compatible) {
    auto it = factories_.find(c);
    if (it == factories_.end()) continue;
    const HardwareSettings& known = it->second.settings;
    for (const auto& [key, value] : spec.settings) {
      if (std::find(known.keys.begin(), known.keys.end(), key) != known.keys.end()) continue;
      std::string list;
      for (const std::string& k : known.keys) list += (list.empty() ? "" : ", ") + k;
      return Fail(Errc::kInvalidArgument, "unknown setting '" + key + "' for " + c + " (it takes: " +
                                              (list.empty() ? "none" : list) + ")");
    }
    if (known.check) return known.check(spec);
    return {};
  }
  return {};
}

std::vector<std::string> HardwareRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, factory] : factories_) out.push_back(name);
  return out;
}

namespace {

std::string Setting(const HardwareSpec& spec, const std::string& key, std::string fallback = "") {
  auto it = spec.settings.find(key);
  return it == spec.settings.end() ? fallback : it->second;
}

Result<uint64_t> NumberSetting(const HardwareSpec& spec, const std::string& key, uint64_t fallback) {
  auto it = spec.settings.find(key);
  if (it == spec.settings.end()) return fallback;
  uint64_t v = 0;
  const std::string& s = it->second;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return Fail(Errc::kInvalidArgument, "setting " + key + "='" + s + "' is not a number");
  }
  return v;
}

Result<bool> BoolSetting(const HardwareSpec& spec, const std::string& key, bool fallback) {
  auto it = spec.settings.find(key);
  if (it == spec.settings.end()) return fallback;
  const std::string& s = it->second;
  if (s == "true" || s == "1") return true;
  if (s == "false" || s == "0") return false;
  return Fail(Errc::kInvalidArgument, "setting " + key + "='" + s + "' is not true or false");
}

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

Result<void> CheckNic(const HardwareSpec& spec) {
  if (auto mac = Setting(spec, "mac"); !mac.empty()) UMBRA_TRY(ParseMac(mac));
  const std::string backend = Setting(spec, "backend", "wire");
  if (backend != "wire" && backend != "tap") {
    return Fail(Errc::kInvalidArgument, "backend '" + backend + "' is not wire or tap");
  }
  return {};
}

class NicOnWire final : public NicHardware {
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

Result<std::unique_ptr<Hardware>> CreateNic(const HardwareSpec& spec) {
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
    return std::unique_ptr<Hardware>(new NicOnWire(std::move(nic), nullptr));
  }
  UMBRA_TRY(CheckNic(spec));
  auto ports = UMBRA_TRY(hw::nic::WirePort::CreatePair());
  auto nic = UMBRA_TRY(hw::nic::Nic::Create(std::move(o), std::move(ports.first)));
  auto peer = UMBRA_TRY(hw::nic::PeerEndpoint::Create(std::move(ports.second), {.queue_frames = 1024}));
  return std::unique_ptr<Hardware>(new NicOnWire(std::move(nic), std::move(peer)));
}

class DiskHardware final : public Hardware {
 public:
  explicit DiskHardware(std::unique_ptr<hw::disk::DiskDevice> disk) : disk_(std::move(disk)) {}
  ~DiskHardware() override { disk_->Stop(); }
  hw::Device* device() override { return disk_.get(); }
  ipc::DataChannelOptions data_options() const override {
    return {.ring_entries = 64, .buffer_size = 64 << 10, .buffer_count = 320};
  }

 private:
  std::unique_ptr<hw::disk::DiskDevice> disk_;  // the device and its image file
};

Result<void> CheckDisk(const HardwareSpec& spec) {
  for (const char* key : {"block_size", "blocks", "cache", "writeback_start", "hw_cpu"}) {
    UMBRA_TRY(NumberSetting(spec, key, 0));
  }
  UMBRA_TRY(BoolSetting(spec, "idle_writeback", false));
  return {};
}

Result<std::unique_ptr<Hardware>> CreateDisk(const HardwareSpec& spec) {
  hw::disk::DiskOptions o;
  o.name = spec.device;
  std::filesystem::path image = Setting(spec, "image", spec.device + ".img");
  if (image.is_relative() && !spec.state_dir.empty()) image = std::filesystem::path(spec.state_dir) / image;
  o.image_path = image.string();
  o.block_size = static_cast<uint32_t>(UMBRA_TRY(NumberSetting(spec, "block_size", 4096)));
  std::error_code ec;
  const bool exists = std::filesystem::exists(image, ec);
  o.capacity_blocks = UMBRA_TRY(NumberSetting(spec, "blocks", exists ? 0 : 4096));
  o.cache_bytes = UMBRA_TRY(NumberSetting(spec, "cache", o.cache_bytes));
  o.writeback_start_percent =
      static_cast<uint32_t>(std::min<uint64_t>(UMBRA_TRY(NumberSetting(spec, "writeback_start", 50)), 101));
  o.idle_writeback = UMBRA_TRY(BoolSetting(spec, "idle_writeback", false));
  if (spec.settings.contains("hw_cpu")) {
    o.hw_cpu = static_cast<int>(std::min<uint64_t>(UMBRA_TRY(NumberSetting(spec, "hw_cpu", 0)), INT32_MAX));
  }
  auto disk = UMBRA_TRY(hw::disk::DiskDevice::Create(std::move(o)));
  return std::unique_ptr<Hardware>(new DiskHardware(std::move(disk)));
}

class EmulatedUart final : public UartHardware {
 public:
  explicit EmulatedUart(std::unique_ptr<hw::uart::UartDevice> uart) : uart_(std::move(uart)) {}
  ~EmulatedUart() override { uart_->Stop(); }
  hw::Device* device() override { return uart_.get(); }
  hw::uart::Line* line() override { return &uart_->line(); }
  ipc::DataChannelOptions data_options() const override {
    return {.ring_entries = 16, .buffer_size = 256, .buffer_count = 32};
  }

 private:
  std::unique_ptr<hw::uart::UartDevice> uart_;  // the device and its line
};

Result<std::unique_ptr<Hardware>> CreateUart(const HardwareSpec& spec) {
  auto uart = UMBRA_TRY(hw::uart::UartDevice::Create({.name = spec.device}));
  return std::unique_ptr<Hardware>(new EmulatedUart(std::move(uart)));
}

void Add(HardwareRegistry& registry, const std::string& compatible, HardwareFactory factory,
         HardwareSettings settings) {
  if (auto r = registry.Register(compatible, std::move(factory), std::move(settings)); !r) {
    std::fprintf(stderr, "RegisterBuiltinHardware: %s\n", r.error().ToString().c_str());
    std::abort();
  }
}

}  // namespace

// The sound card plays into a WAV file ("the speaker"): setting "speaker"
// (relative to the state folder; default <device>-speaker.wav), "speed" (the
// sample clock's pace, 1 = real time).
class SoundHardware final : public Hardware {
 public:
  explicit SoundHardware(std::unique_ptr<hw::sound::SoundCard> card) : card_(std::move(card)) {}
  ~SoundHardware() override { card_->Stop(); }
  hw::Device* device() override { return card_.get(); }
  ipc::DataChannelOptions data_options() const override {
    return {.ring_entries = 256, .buffer_size = 4096, .buffer_count = 64};
  }

 private:
  std::unique_ptr<hw::sound::SoundCard> card_;  // the card, its clock and its speaker
};

// Setting "speed": the sample clock's pace, in (0, 1000].
static Result<double> SoundSpeed(const HardwareSpec& spec) {
  const std::string speed = Setting(spec, "speed", "1");
  char* end = nullptr;
  const double v = std::strtod(speed.c_str(), &end);
  if (end == speed.c_str() || *end != '\0' || v <= 0 || v > 1000) {
    return Fail(Errc::kInvalidArgument, spec.device + ": setting speed '" + speed + "' is not a number in (0, 1000]");
  }
  return v;
}

Result<std::unique_ptr<Hardware>> CreateSound(const HardwareSpec& spec) {
  hw::sound::SoundCardOptions options;
  options.name = spec.device;
  auto setting = [&](const char* key, std::string fallback) {
    auto it = spec.settings.find(key);
    return it == spec.settings.end() ? fallback : it->second;
  };
  std::filesystem::path speaker = setting("speaker", spec.device + "-speaker.wav");
  if (speaker.is_relative() && !spec.state_dir.empty()) speaker = spec.state_dir / speaker;
  options.speaker = UMBRA_TRY(hw::sound::WavSpeaker::Create({.path = speaker.string()}));
  options.speed = UMBRA_TRY(SoundSpeed(spec));
  auto card = UMBRA_TRY(hw::sound::SoundCard::Create(std::move(options)));
  card->Start();
  return std::unique_ptr<Hardware>(new SoundHardware(std::move(card)));
}

// Each with the keys of the hardware, then of its driver (drivers/<name>/),
// then "failpoints" (armed in the driver before probe).
void RegisterBuiltinHardware(HardwareRegistry& registry) {
  Add(registry, "umbra,e1000-emu", CreateNic,
      {{"mac", "backend", "tap", "tap_address", "rx_expire_ms", "failpoints"}, CheckNic});
  Add(registry, hw::disk::kCompatible, CreateDisk,
      {{"image", "blocks", "block_size", "cache", "writeback_start", "idle_writeback", "hw_cpu", "queue_depth",
        "payloads", "failpoints"},
       CheckDisk});
  Add(registry, hw::uart::kCompatible, CreateUart, {{"read_timeout_ms", "failpoints"}, nullptr});
  Add(registry, std::string(hw::sound::SoundCard::kCompatible), CreateSound,
      {{"speaker", "speed", "failpoints"}, [](const HardwareSpec& spec) -> Result<void> {
         UMBRA_TRY(SoundSpeed(spec));
         return {};
       }});
}

}  // namespace umbra::machine
