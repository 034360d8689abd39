#include "control/frontends.h"

#include "runtime/machine/machine.h"
#include "umbra/machine.pb.h"

#include "runtime/hw/uart/line.h"
#include "runtime/machine/hardware.h"
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

Result<std::unique_ptr<Frontend>> StartOne(machine::Machine& machine, const proto::MachineDevice& device,
                                           const std::string& run_dir) {
  const std::string& cls = device.device_class();
  if (cls == "block") return StartBlock(machine, device, run_dir);
  if (cls == "uart") return StartUart(machine, device, run_dir);
  return Fail(Errc::kInvalidArgument,
              device.name() + ": class \"" + cls + "\" has no frontend (block and uart have)");
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
