// The driver's root file system, planned in the host and built in the child.
//
// The child runs in a vfork-style clone sharing the host's memory, so
// everything it needs — paths, mount options — is computed here first; the
// child then only walks the list with raw system calls.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace umbra::sandbox {

struct MountOp {
  enum class Kind {
    kMount,    // mount(source, target, fstype, flags, data)
    kMkdir,    // an empty directory at target
    kBind,     // an empty file or directory at target, source's tree moved on it, read-only
    kSymlink,  // target -> source
  };
  Kind kind = Kind::kMkdir;
  std::string source;
  std::string target;  // under the staging directory
  std::string fstype;
  std::string data;
  unsigned long flags = 0;
  bool is_file = false;   // kBind: the mount point is a file
  bool optional = false;  // a failure leaves the part out rather than fail the spawn
};

struct RootPlan {
  std::string staging;                // where the new root is assembled before pivot_root
  std::vector<MountOp> ops;           // the root, in order (targets under `staging`)
  std::vector<MountOp> instance_ops;  // each instance's own, once in the new root (absolute targets)
  std::string exec_path;              // the driver binary inside the new root
};

// The driver binary `binary_path` appears in the new root as /driver/<binary_name>.
RootPlan PlanRoot(const std::string& binary_name, const std::string& binary_path, uint64_t tmpfs_bytes);

}  // namespace umbra::sandbox
