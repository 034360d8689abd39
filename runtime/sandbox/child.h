// The child's side of Launch: what a new driver process does between
// clone(2) and exec(2), and the helpers that make shared namespaces and a
// root once. Compiled without sanitizers (CMakeLists.txt).
//
// The child is a vfork-style clone (CLONE_VM | CLONE_VFORK, like glibc's
// posix_spawn): it shares the host's memory until it execs, so it only walks
// a ChildPlan computed beforehand, with raw system calls — no allocation, no
// lock, no libc state — and reports a failed step through the plan itself.
#pragma once

#include <linux/filter.h>
#include <sys/resource.h>

#include <utility>
#include <vector>

#include "runtime/sandbox/root_fs.h"

namespace umbra::sandbox {

struct RawMount {
  MountOp::Kind kind;
  const char* source;
  const char* target;
  const char* fstype;
  const char* data;
  unsigned long flags;
  bool is_file;
  bool optional;
  int tree = -1;  // kBind: the source's tree, cloned before the staging tmpfs covers anything
};

// How the child gets its root.
enum class RootSource {
  kHost,      // no mount namespace: the host's files
  kBuild,     // a new mount namespace, root assembled and pivoted into
  kTemplate,  // a copy of a namespace whose root was assembled once (RootTemplateMain)
};

struct ChildPlan {
  const char* path = nullptr;  // what to exec (inside the new root when there is one)
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  int control_fd = -1;
  bool inherit_stdio = false;
  std::vector<const char*> procs_files;  // cgroups to join
  // User namespace (the host is not root): "65534 <uid> 1".
  bool user_ns = false;
  const char* uid_map = nullptr;
  const char* gid_map = nullptr;
  bool drop_to_driver_uid = false;  // the host is root: setresuid(uid)
  uid_t uid = 0;
  int join_net = -1;  // a shared empty network namespace, to setns into
  int join_ipc = -1;  // a shared empty IPC namespace
  RootSource root = RootSource::kHost;
  int root_template = -1;                 // kTemplate: the namespace to copy
  const char* staging = nullptr;          // kBuild
  std::vector<RawMount> mounts;           // kBuild: the root
  std::vector<RawMount> instance_mounts;  // this instance's own /proc and /tmp, in the new root
  std::vector<std::pair<int, rlim_t>> rlimits;
  bool no_new_privs = false;
  const sock_fprog* filter = nullptr;
  // RootTemplateMain: the namespace it built (a descriptor of the host's, CLONE_FILES).
  int built_namespace = -1;
  // Written by the child when a step fails.
  const char* failed_step = nullptr;
  int failed_errno = 0;
};

// The new driver process: clone(2)'s entry point, `arg` a ChildPlan.
int ChildMain(void* arg);

// A helper cloned with CLONE_NEWNET | CLONE_NEWIPC | CLONE_FILES: leaves
// descriptors of its new namespaces in `join_net` and `join_ipc`, then exits.
int SharedNamespacesMain(void* arg);

// A helper cloned with CLONE_NEWNS | CLONE_FILES: assembles the plan's root
// in its namespace and leaves a descriptor of that namespace in
// `built_namespace`, then exits.
int RootTemplateMain(void* arg);

}  // namespace umbra::sandbox
