#include "cli/run_control.h"

#include <unistd.h>

#include "control/control_server.h"
#include "control/frontends.h"
#include "control/machine_control.h"
#include "control/run_dir.h"
#include "machine/machine.h"
#include "umbra/machine.pb.h"

namespace umbra::cli {
namespace {

class Faces final : public RunFaces {
 public:
  explicit Faces(std::unique_ptr<control::RunDir> dir) : dir_(std::move(dir)) {}
  void set_control(std::unique_ptr<control::MachineControl> control) { control_ = std::move(control); }
  // The server goes first (it calls into control_, which asks frontends_),
  // then the frontends, while the machine still serves them.
  ~Faces() override {
    server_.reset();
    frontends_.reset();
  }

  const std::string& run_dir() const override { return dir_->path(); }
  std::string socket_path() const override { return dir_->socket_path(); }

  Result<void> StartFrontends(machine::Machine& machine, const proto::Machine& description) {
    frontends_ = UMBRA_TRY(control::Frontends::Start(machine, description, dir_->path()));
    return {};
  }
  std::vector<std::string> Describe(const std::string& device) const {
    return frontends_ ? frontends_->Describe(device) : std::vector<std::string>{};
  }

  Result<void> Listen() {
    server_ = UMBRA_TRY(control::ControlServer::Create(
        dir_->socket_path(), [this](std::string_view line) { return control_->HandleLine(line); },
        control::MachineControl::TooLongReply()));
    return {};
  }

 private:
  std::unique_ptr<control::RunDir> dir_;              // where the socket lives
  std::unique_ptr<control::MachineControl> control_;  // answers the socket's requests
  std::unique_ptr<control::Frontends> frontends_;     // the devices' outside faces
  std::unique_ptr<control::ControlServer> server_;    // the socket; stopped first
};

// The default folder for the machine's name; when another run of a machine of
// that name holds it, one of its own beside it (NAME.PID), so that two runs of
// one file (tests in parallel) do not collide. `umbra status` lists both.
std::string DefaultRunDir(const proto::Machine& description) {
  const std::string name = description.name().empty() ? "machine" : description.name();
  const std::string dir = control::RunDir::DefaultFor(name);
  if (!control::Answers(dir + "/control.sock")) return dir;
  return control::RunDir::DefaultFor(name + "." + std::to_string(::getpid()));
}

}  // namespace

Result<std::unique_ptr<RunFaces>> StartRunFaces(machine::Machine& machine, const proto::Machine& description,
                                                const std::string& run_dir, RunLogFn log) {
  auto dir = UMBRA_TRY(control::RunDir::Create(run_dir.empty() ? DefaultRunDir(description) : run_dir));
  control::MachineControlOptions options;
  options.on_inject = [log](const std::string& device, const std::string& detail) { log("inject", device, detail); };
  auto faces = std::make_unique<Faces>(std::move(dir));
  // The faces own the control, so the lister's pointer outlives every call.
  options.frontends = [f = faces.get()](const std::string& device) { return f->Describe(device); };
  faces->set_control(std::make_unique<control::MachineControl>(machine, std::move(options)));
  UMBRA_TRY(faces->StartFrontends(machine, description));
  for (const auto& d : description.devices()) {
    for (const auto& f : faces->Describe(d.name())) log("frontend", d.name(), f);
  }
  UMBRA_TRY(faces->Listen());
  log("control", "machine", "listening on " + faces->socket_path());
  return std::unique_ptr<RunFaces>(std::move(faces));
}

}  // namespace umbra::cli
