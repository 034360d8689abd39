#include "runtime/machine/hardware.h"

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

Result<void> HardwareRegistry::Register(const std::string& compatible, HardwareFactory factory) {
  if (!factories_.emplace(compatible, std::move(factory)).second) {
    return Fail(Errc::kAlreadyExists, "hardware for " + compatible + " is registered twice");
  }
  return {};
}

Result<std::unique_ptr<Hardware>> HardwareRegistry::Create(const HardwareSpec& spec) const {
  for (const std::string& c : spec.compatible) {
    auto it = factories_.find(c);
    if (it == factories_.end()) continue;
    auto hw = it->second(spec);
    if (!hw) return Fail(hw.error().code, spec.device + ": " + hw.error().message);
    return hw;
  }
  return std::unique_ptr<Hardware>();
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
  if (backend != "wire") return Fail(Errc::kInvalidArgument, "backend '" + backend + "' is not wire or tap");
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

void Add(HardwareRegistry& registry, const std::string& compatible, HardwareFactory factory) {
  if (auto r = registry.Register(compatible, std::move(factory)); !r) {
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
  const std::string speed = setting("speed", "1");
  char* end = nullptr;
  options.speed = std::strtod(speed.c_str(), &end);
  if (end == speed.c_str() || *end != '\0' || options.speed <= 0 || options.speed > 1000) {
    return Fail(Errc::kInvalidArgument, spec.device + ": setting speed '" + speed +
                                            "' is not a number in (0, 1000]");
  }
  auto card = UMBRA_TRY(hw::sound::SoundCard::Create(std::move(options)));
  card->Start();
  return std::unique_ptr<Hardware>(new SoundHardware(std::move(card)));
}

void RegisterBuiltinHardware(HardwareRegistry& registry) {
  Add(registry, "umbra,e1000-emu", CreateNic);
  Add(registry, hw::disk::kCompatible, CreateDisk);
  Add(registry, hw::uart::kCompatible, CreateUart);
  Add(registry, std::string(hw::sound::SoundCard::kCompatible), CreateSound);
}

}  // namespace umbra::machine
