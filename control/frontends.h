// Frontends: the outside faces of a running machine's devices, one per device
// whose description has a `frontend { … }`, each made by its class's
// frontend (shadows/<class>/frontend/) on top of the device's shadow — a
// client of the class interface like any workload.
//
//   auto faces = UMBRA_TRY(Frontends::Start(machine, description, run_dir));
//   faces->Describe("disk0");   // {"file /run/…/disk0"}
//   faces.reset();              // every frontend stopped
//
// Frontends start once the machine has settled and stop before it stops; a
// device unbound meanwhile leaves its frontend failing requests (kNoDevice).
//
// Thread safety: Describe from any thread; Start and the destructor from one.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

namespace umbra::machine {
class Machine;
}
namespace umbra::proto {
class Machine;
}

namespace umbra::control {

class Frontend {
 public:
  virtual ~Frontend() = default;
  // "file /run/…/disk0", "pty /dev/pts/4 (link /run/…/uart0)" …
  virtual std::string Describe() const = 0;
};

class Frontends {
 public:
  // Starts every frontend the description asks for; the first that fails
  // stops the others and is the error (kUnavailable when the machine lacks
  // FUSE or TAP, kInvalidArgument for a class that has no frontend).
  static Result<std::unique_ptr<Frontends>> Start(machine::Machine& machine, const proto::Machine& description,
                                                  const std::string& run_dir);
  ~Frontends();

  std::vector<std::string> Describe(const std::string& device) const;

 private:
  Frontends() = default;
  // Device name → its frontend; destroyed in reverse order of start.
  std::vector<std::pair<std::string, std::unique_ptr<Frontend>>> frontends_;
};

}  // namespace umbra::control
