#include "control/frontends.h"

#include "machine/machine.h"
#include "umbra/machine.pb.h"

#include "runtime/hw/uart/line.h"
#include "shadows/uart/class.h"
#include "shadows/net/frontend/tap_frontend.h"
#include "shadows/net/net_shadow.h"
#include "shadows/sound/frontend/fifo_player.h"
#include "shadows/sound/frontend/fifo_recorder.h"
#include "shadows/sound/sound_shadow.h"
#include "shadows/uart/frontend/pty_pump.h"
#include "shadows/uart/uart_shadow.h"

#ifdef UMBRA_HAVE_BLOCK_FRONTEND
#include "shadows/block/block_shadow.h"
#include "shadows/block/frontend/fuse_file.h"
#endif

namespace umbra::control {
namespace {

std::string Resolve(const std::string& run_dir, const std::string& path, const std::string& fallback) {
  const std::string p = path.empty() ? fallback : path;
  return p.front() == '/' ? p : run_dir + "/" + p;
}

#ifdef UMBRA_HAVE_BLOCK_FRONTEND
class BlockFrontend final : public Frontend {
 public:
  explicit BlockFrontend(std::unique_ptr<shadows::block::FuseFile> file) : file_(std::move(file)) {}
  std::string Describe() const override { return "file " + file_->path(); }

 private:
  std::unique_ptr<shadows::block::FuseFile> file_;  // the mounted file; unmounted when this goes
};
#endif

Result<std::unique_ptr<Frontend>> StartBlock(machine::Machine& machine, const proto::MachineDevice& device,
                                             const std::string& run_dir) {
#ifdef UMBRA_HAVE_BLOCK_FRONTEND
  auto* disk = dynamic_cast<shadows::block::BlockShadow*>(machine.shadow(device.name()));
  if (!disk) return Fail(Errc::kUnavailable, device.name() + " has no block shadow (is it bound?)");
  shadows::block::FuseFileOptions options;
  options.path = Resolve(run_dir, device.frontend().path(), device.name());
  options.kernel_cache = !device.frontend().direct();
  auto file = UMBRA_TRY(shadows::block::FuseFile::Create(*disk, std::move(options)));
  return std::unique_ptr<Frontend>(new BlockFrontend(std::move(file)));
#else
  (void)machine;
  (void)run_dir;
  return Fail(Errc::kUnavailable, device.name() + ": this umbra was built without libfuse3 (no block frontend)");
#endif
}

// The application's side (the shadowed Port) as <name>, the emulated cable's
// far end as <name>-wire.
class UartFrontend final : public Frontend {
 public:
  UartFrontend(std::unique_ptr<shadows::uart::PtyPump> port, std::unique_ptr<shadows::uart::PtyPump> wire)
      : port_(std::move(port)), wire_(std::move(wire)) {}
  std::string Describe() const override {
    std::string out = "pty " + port_->link() + " -> " + port_->pty();
    if (wire_) out += "; wire pty " + wire_->link() + " -> " + wire_->pty();
    return out;
  }

 private:
  std::unique_ptr<shadows::uart::PtyPump> port_;  // the device as programs see it
  std::unique_ptr<shadows::uart::PtyPump> wire_;  // the other machine on the cable
};

constexpr int64_t kPumpWaitNs = 100'000'000;

// A timeout is "nothing yet", not an error, for a pump.
Result<size_t> NoneOnTimeout(Result<size_t> r) {
  if (!r && r.error().code == Errc::kTimeout) return 0;
  return r;
}

Result<std::unique_ptr<Frontend>> StartUart(machine::Machine& machine, const proto::MachineDevice& device,
                                            const std::string& run_dir) {
  auto* port = dynamic_cast<shadows::uart::UartShadow*>(machine.shadow(device.name()));
  if (!port) return Fail(Errc::kUnavailable, device.name() + " has no uart shadow (is it bound?)");
  UMBRA_TRY(port->Open());
  const std::string link = Resolve(run_dir, device.frontend().path(), device.name());
  auto pump = UMBRA_TRY(shadows::uart::PtyPump::Create(
      {.link = link}, [port](std::span<const std::byte> b) { return NoneOnTimeout(port->Write(b, kPumpWaitNs)); },
      [port](std::span<std::byte> b) { return NoneOnTimeout(port->Read(b, kPumpWaitNs)); }));
  std::unique_ptr<shadows::uart::PtyPump> wire;
  if (auto* hw = dynamic_cast<machine::UartHardware*>(machine.hardware(device.name()))) {
    hw::uart::Line* line = hw->line();
    wire = UMBRA_TRY(shadows::uart::PtyPump::Create(
        {.link = link + "-wire"},
        [line](std::span<const std::byte> b) -> Result<size_t> { return line->Send(b, kPumpWaitNs); },
        [line](std::span<std::byte> b) -> Result<size_t> { return line->Receive(b, kPumpWaitNs); }));
  }
  return std::unique_ptr<Frontend>(new UartFrontend(std::move(pump), std::move(wire)));
}

// The class side as a TAP in `netns`, the NIC's wire TAP moved into
// `wire_netns`: the two-namespace lab.
class NetFrontend final : public Frontend {
 public:
  std::string Describe() const override {
    std::string out = "tap " + tap->name() + (app ? " in netns " + app->name() : "");
    if (peer) out += "; wire tap " + wire_tap + " in netns " + peer->name();
    return out;
  }
  // Destroyed bottom-up: the TAP goes before its namespace.
  std::unique_ptr<umbra::net::Netns> peer;  // the wire's namespace
  std::unique_ptr<umbra::net::Netns> app;   // the application's namespace
  std::unique_ptr<umbra::net::TapFrontend> tap;
  std::string wire_tap;
};

// "10.77.0.1/24" → address and prefix; kInvalidArgument when malformed.
Result<std::pair<std::string, int>> SplitCidr(const std::string& cidr) {
  if (cidr.empty()) return std::pair<std::string, int>{"", 24};
  const size_t slash = cidr.find('/');
  if (slash == std::string::npos) return std::pair<std::string, int>{cidr, 24};
  const std::string bits = cidr.substr(slash + 1);
  if (bits.empty() || bits.size() > 2 || bits.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(bits) > 32) {
    return Fail(Errc::kInvalidArgument, "address '" + cidr + "' is not a.b.c.d/prefix");
  }
  return std::pair<std::string, int>{cidr.substr(0, slash), std::stoi(bits)};
}

std::string DeviceSetting(const proto::MachineDevice& device, const std::string& key, const std::string& fallback) {
  auto it = device.settings().find(key);
  return it == device.settings().end() ? fallback : it->second;
}

Result<std::unique_ptr<Frontend>> StartNet(machine::Machine& machine, const proto::MachineDevice& device) {
  auto* nic = dynamic_cast<umbra::net::NetShadow*>(machine.shadow(device.name()));
  if (!nic) return Fail(Errc::kUnavailable, device.name() + " has no net shadow (is it bound?)");
  const auto& f = device.frontend();
  auto out = std::make_unique<NetFrontend>();
  if (!f.wire_netns().empty()) {
    if (DeviceSetting(device, "backend", "wire") != "tap") {
      return Fail(Errc::kInvalidArgument, "wire_netns needs the NIC's setting backend: \"tap\"");
    }
    out->peer = UMBRA_TRY(umbra::net::Netns::Ensure(f.wire_netns()));
    out->wire_tap = DeviceSetting(device, "tap", "umbra-" + device.name());
    UMBRA_TRY(umbra::net::MoveInterface(out->wire_tap, f.wire_netns(), f.wire_address()));
  }
  if (!f.netns().empty()) out->app = UMBRA_TRY(umbra::net::Netns::Ensure(f.netns()));
  const auto [address, prefix] = UMBRA_TRY(SplitCidr(f.address()));
  out->tap = UMBRA_TRY(
      umbra::net::TapFrontend::Create(*nic, {.name = f.interface().empty() ? "umf-" + device.name() : f.interface(),
                                             .netns = f.netns(),
                                             .ipv4_address = address,
                                             .prefix_length = prefix}));
  return std::unique_ptr<Frontend>(std::move(out));
}

class SoundFrontend final : public Frontend {
 public:
  SoundFrontend(std::unique_ptr<umbra::sound::FifoPlayer> player, std::unique_ptr<umbra::sound::FifoRecorder> recorder)
      : player_(std::move(player)), recorder_(std::move(recorder)) {}
  std::string Describe() const override {
    return "playback fifo " + player_->path() + "; capture fifo " + recorder_->path();
  }

 private:
  std::unique_ptr<umbra::sound::FifoPlayer> player_;      // feeds the playback stream
  std::unique_ptr<umbra::sound::FifoRecorder> recorder_;  // drains the capture stream
};

Result<std::unique_ptr<Frontend>> StartSound(machine::Machine& machine, const proto::MachineDevice& device,
                                             const std::string& run_dir) {
  auto* pcm = dynamic_cast<umbra::sound::SoundShadow*>(machine.shadow(device.name()));
  if (!pcm) return Fail(Errc::kUnavailable, device.name() + " has no sound shadow (is it bound?)");
  UMBRA_TRY(pcm->Open(5'000'000'000));
  const auto& f = device.frontend();
  auto player =
      UMBRA_TRY(umbra::sound::FifoPlayer::Create(*pcm, {.path = Resolve(run_dir, f.path(), device.name() + ".play")}));
  umbra::sound::FifoRecorderOptions capture{.path = Resolve(run_dir, f.capture_path(), device.name() + ".rec")};
  if (f.capture_rate() != 0) capture.params.rate = f.capture_rate();
  if (f.capture_channels() != 0) capture.params.channels = f.capture_channels();
  if (capture.params.rate > 384000 || capture.params.channels > 8) {
    return Fail(Errc::kInvalidArgument, "capture_rate must be at most 384000, capture_channels at most 8");
  }
  capture.container = f.capture_raw() ? umbra::sound::CaptureContainer::kRaw : umbra::sound::CaptureContainer::kWav;
  auto recorder = UMBRA_TRY(umbra::sound::FifoRecorder::Create(*pcm, std::move(capture)));
  return std::unique_ptr<Frontend>(new SoundFrontend(std::move(player), std::move(recorder)));
}

Result<std::unique_ptr<Frontend>> StartOne(machine::Machine& machine, const proto::MachineDevice& device,
                                           const std::string& run_dir) {
  const std::string& cls = device.device_class();
  if (cls == "block") return StartBlock(machine, device, run_dir);
  if (cls == "uart") return StartUart(machine, device, run_dir);
  if (cls == "net") return StartNet(machine, device);
  if (cls == "sound") return StartSound(machine, device, run_dir);
  return Fail(Errc::kInvalidArgument,
              device.name() + ": class \"" + cls + "\" has no frontend (block, uart, net and sound have)");
}

}  // namespace

Result<std::unique_ptr<Frontends>> Frontends::Start(machine::Machine& machine, const proto::Machine& description,
                                                    const std::string& run_dir) {
  std::unique_ptr<Frontends> out(new Frontends());
  for (const auto& device : description.devices()) {
    if (!device.has_frontend()) continue;
    auto frontend = StartOne(machine, device, run_dir);
    if (!frontend) return Fail(frontend.error().code, "frontend of " + device.name() + ": " + frontend.error().message);
    out->frontends_.emplace_back(device.name(), std::move(*frontend));
  }
  return out;
}

Frontends::~Frontends() {
  while (!frontends_.empty()) frontends_.pop_back();
}

std::vector<std::string> Frontends::Describe(const std::string& device) const {
  std::vector<std::string> out;
  for (const auto& [name, f] : frontends_) {
    if (name == device) out.push_back(f->Describe());
  }
  return out;
}

}  // namespace umbra::control
