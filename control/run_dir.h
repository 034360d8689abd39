// RunDir: the owner-only folder a running machine keeps its control socket
// and its frontends' paths in (the pty links, the FUSE mount point).
//
// The default is <base>/<machine name>, where <base> is
// $UMBRA_RUN_DIR, else $XDG_RUNTIME_DIR/umbra, else /tmp/umbra-<uid>.
// Every folder this makes is mode 0700; an existing one is used only when it
// belongs to the caller and nobody else may write into it (so another user
// cannot plant a socket or a link where `umbra status` will look).
//
//   auto dir = UMBRA_TRY(RunDir::Create(RunDir::DefaultFor("small")));
//   dir->socket_path();   // ".../small/control.sock"
//
// Thread safety: immutable after Create.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

namespace umbra::control {

class RunDir {
 public:
  // Makes `path` (and missing parents) with mode 0700, or checks the existing
  // one. Errors: kIo (cannot make it), kInvalidArgument (not ours, or open to
  // others).
  static Result<std::unique_ptr<RunDir>> Create(std::string path);

  // Where machines' run folders go by default.
  static std::string DefaultBase();
  // DefaultBase() + "/" + machine.
  static std::string DefaultFor(const std::string& machine);
  // The run folder a client should use: `run_dir` when given, else
  // DefaultFor(machine) when given, else the one folder under DefaultBase()
  // whose socket a machine listens on. Errors name the choices.
  static Result<std::string> Find(const std::string& run_dir, const std::string& machine);

  // Removes the folder if Create made it and it is empty by then.
  ~RunDir();
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;

  const std::string& path() const { return path_; }
  std::string socket_path() const { return path_ + "/control.sock"; }

 private:
  RunDir(std::string path, bool made) : path_(std::move(path)), made_(made) {}
  std::string path_;
  bool made_;  // Create made it: it goes with the run
};

// Checks that `path` is a folder owned by the caller that only the caller may
// write into (kInvalidArgument otherwise, kNotFound when it does not exist).
Result<void> CheckOwnerOnly(const std::string& path);

}  // namespace umbra::control
