#include "control/frontends.h"

#include "runtime/machine/machine.h"
#include "umbra/machine.pb.h"

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

Result<std::unique_ptr<Frontend>> StartOne(machine::Machine& machine, const proto::MachineDevice& device,
                                           const std::string& run_dir) {
  const std::string& cls = device.device_class();
  if (cls == "block") return StartBlock(machine, device, run_dir);
  return Fail(Errc::kInvalidArgument,
              device.name() + ": class \"" + cls + "\" has no frontend (block has)");
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
