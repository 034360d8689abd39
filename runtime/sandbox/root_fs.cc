#include "runtime/sandbox/root_fs.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>

namespace umbra::sandbox {
namespace {

// The folders the dynamic linker and the libraries live in. On a merged-/usr
// system /lib and /lib64 are symbolic links into /usr, and are made so in the
// driver's root too.
constexpr const char* kLibraryDirs[] = {"/usr/lib", "/usr/lib64", "/lib", "/lib64"};
// Devices a library may open (glibc, the sanitizers' runtimes).
constexpr const char* kDevices[] = {"/dev/null", "/dev/zero", "/dev/urandom"};

constexpr unsigned long kReadOnly = MS_RDONLY | MS_NOSUID | MS_NODEV;

}  // namespace

RootPlan PlanRoot(const std::string& binary_name, const std::string& binary_path, uint64_t tmpfs_bytes) {
  RootPlan plan;
  plan.staging = "/tmp";
  const std::string& s = plan.staging;
  using K = MountOp::Kind;
  plan.ops.push_back({.kind = K::kMount,
                      .source = "umbra-driver-root",
                      .target = s,
                      .fstype = "tmpfs",
                      .data = "size=1m,nr_inodes=256,mode=0755",
                      .flags = MS_NOSUID | MS_NODEV});
  plan.ops.push_back({.kind = K::kMkdir, .target = s + "/usr"});
  for (const char* dir : kLibraryDirs) {
    struct stat st {};
    if (lstat(dir, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char link[PATH_MAX];
      const ssize_t n = readlink(dir, link, sizeof link - 1);
      if (n <= 0) continue;
      plan.ops.push_back({.kind = K::kSymlink, .source = std::string(link, static_cast<size_t>(n)), .target = s + dir});
    } else if (S_ISDIR(st.st_mode)) {
      plan.ops.push_back({.kind = K::kBind, .source = dir, .target = s + dir, .flags = kReadOnly});
    }
  }
  plan.ops.push_back({.kind = K::kMkdir, .target = s + "/dev"});
  for (const char* dev : kDevices) {
    // Device nodes: read-only, but not "nodev".
    plan.ops.push_back({.kind = K::kBind,
                        .source = dev,
                        .target = s + dev,
                        .flags = MS_RDONLY | MS_NOSUID,
                        .is_file = true,
                        .optional = true});
  }
  plan.ops.push_back({.kind = K::kMkdir, .target = s + "/driver"});
  plan.exec_path = "/driver/" + binary_name;
  plan.ops.push_back({.kind = K::kBind,
                      .source = binary_path,
                      .target = s + plan.exec_path,
                      .flags = MS_RDONLY | MS_NOSUID | MS_NODEV,
                      .is_file = true});
  plan.ops.push_back({.kind = K::kMkdir, .target = s + "/proc"});
  plan.ops.push_back({.kind = K::kMkdir, .target = s + "/tmp"});
  // Each instance's own, mounted in the new root: a /proc of its PID
  // namespace (its own processes only, without /proc/sys and the like; glibc
  // and the sanitizers read /proc/self/maps) and a small private /tmp.
  plan.instance_ops.push_back({.kind = K::kMount,
                               .source = "proc",
                               .target = "/proc",
                               .fstype = "proc",
                               .data = "subset=pid,hidepid=invisible",
                               .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC,
                               .optional = true});
  plan.instance_ops.push_back({.kind = K::kMount,
                               .source = "umbra-driver-tmp",
                               .target = "/tmp",
                               .fstype = "tmpfs",
                               .data = "size=" + std::to_string(tmpfs_bytes) + ",nr_inodes=1024,mode=1777",
                               .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC});
  return plan;
}

}  // namespace umbra::sandbox
