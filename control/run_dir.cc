#include "control/run_dir.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace umbra::control {
namespace {

std::string Parent(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Makes `path` and its missing parents, each 0700.
Result<void> MakeDirs(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return {};
  const std::string parent = Parent(path);
  if (parent != path) UMBRA_TRY(MakeDirs(parent));
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return FailErrno("making " + path);
  return {};
}

bool Listening(const std::string& socket_path) {
  struct stat st {};
  return ::stat(socket_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace

Result<void> CheckOwnerOnly(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Fail(Errc::kNotFound, path + " does not exist");
    return FailErrno("checking " + path);
  }
  if (!S_ISDIR(st.st_mode)) return Fail(Errc::kInvalidArgument, path + " is not a folder");
  if (st.st_uid != ::geteuid()) {
    return Fail(Errc::kInvalidArgument, path + " belongs to uid " + std::to_string(st.st_uid) + ", not to you");
  }
  if ((st.st_mode & 077) != 0) {
    return Fail(Errc::kInvalidArgument, path + " is open to other users (mode must be 0700)");
  }
  return {};
}

Result<std::unique_ptr<RunDir>> RunDir::Create(std::string path) {
  if (path.empty()) return Fail(Errc::kInvalidArgument, "the run folder has no name");
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const bool existed = ::access(path.c_str(), F_OK) == 0;
  UMBRA_TRY(MakeDirs(path));
  UMBRA_TRY(CheckOwnerOnly(path));
  // The shared default base must be ours too: whoever owns it could swap the
  // machine's folder for their own.
  if (Parent(path) == DefaultBase()) UMBRA_TRY(CheckOwnerOnly(DefaultBase()));
  return std::unique_ptr<RunDir>(new RunDir(std::move(path), !existed));
}

RunDir::~RunDir() {
  if (made_) ::rmdir(path_.c_str());  // fails, harmlessly, when something was left in it
}

std::string RunDir::DefaultBase() {
  if (const char* d = std::getenv("UMBRA_RUN_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) return std::string(x) + "/umbra";
  return "/tmp/umbra-" + std::to_string(::geteuid());
}

std::string RunDir::DefaultFor(const std::string& machine) { return DefaultBase() + "/" + machine; }

Result<std::string> RunDir::Find(const std::string& run_dir, const std::string& machine) {
  if (!run_dir.empty()) return run_dir;
  if (!machine.empty()) return DefaultFor(machine);
  const std::string base = DefaultBase();
  DIR* d = ::opendir(base.c_str());
  if (!d) return Fail(Errc::kNotFound, "no machine is running (" + base + " does not exist); start one with umbra run");
  std::vector<std::string> running;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (Listening(base + "/" + name + "/control.sock")) running.push_back(name);
  }
  ::closedir(d);
  if (running.size() == 1) return base + "/" + running[0];
  if (running.empty()) return Fail(Errc::kNotFound, "no machine is running under " + base);
  std::string names;
  for (const auto& n : running) names += (names.empty() ? "" : ", ") + n;
  return Fail(Errc::kInvalidArgument, "several machines run (" + names + "): name one with --machine");
}

}  // namespace umbra::control
