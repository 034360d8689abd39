// What `umbra run` shows to the outside while the machine runs: its run
// folder, the control socket in it (`umbra status`, `umbra inject`), and the
// devices' frontends. Kept apart from run_cmd.cc's own flow.
//
//   auto faces = StartRunFaces(machine, description, run_dir_flag, log);
//   ... the machine runs ...
//   faces.reset();  // frontends stopped, socket closed and removed
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "base/result.h"

namespace umbra::machine {
class Machine;
}
namespace umbra::proto {
class Machine;
}

namespace umbra::cli {

// (kind, object, detail): a line for the run's log.
using RunLogFn = std::function<void(const std::string&, const std::string&, const std::string&)>;

class RunFaces {
 public:
  virtual ~RunFaces() = default;
  virtual const std::string& run_dir() const = 0;
  virtual std::string socket_path() const = 0;
};

// Makes the run folder (`run_dir`, or the default for the machine's name),
// listens on its control socket and starts the frontends the description
// asks for. Errors: the folder cannot be made or is not owner-only, another
// machine listens there, a frontend cannot start.
Result<std::unique_ptr<RunFaces>> StartRunFaces(machine::Machine& machine, const proto::Machine& description,
                                                const std::string& run_dir, RunLogFn log);

}  // namespace umbra::cli
