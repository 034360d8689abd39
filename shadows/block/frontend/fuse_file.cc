#include "shadows/block/frontend/fuse_file.h"

#define FUSE_USE_VERSION 312
#include <fcntl.h>
#include <fuse.h>
#include <linux/falloc.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <shared_mutex>
#include <thread>
#include <vector>

namespace umbra::shadows::block {

class FuseFile::Impl {
 public:
  Impl(Disk& disk, FuseFileOptions options) : disk_(disk), options_(std::move(options)) {}
  ~Impl() { Stop(); }

  Result<void> Start();
  void Stop();
  const std::string& path() const { return options_.path; }

  // The file's operations, called by libfuse's worker threads.
  static int GetAttr(const char* path, struct stat* st, fuse_file_info* fi);
  static int Open(const char* path, fuse_file_info* fi);
  static int Read(const char* path, char* buf, size_t size, off_t off, fuse_file_info* fi);
  static int Write(const char* path, const char* buf, size_t size, off_t off, fuse_file_info* fi);
  static int Fsync(const char* path, int datasync, fuse_file_info* fi);
  static int Truncate(const char* path, off_t size, fuse_file_info* fi);
  static int Fallocate(const char* path, int mode, off_t off, off_t len, fuse_file_info* fi);
  static void* Init(fuse_conn_info* conn, fuse_config* cfg);

 private:
  static Impl& Self() { return *static_cast<Impl*>(fuse_get_context()->private_data); }
  uint64_t size_bytes() const { return disk_.capacity_blocks() * disk_.block_size(); }
  int ReadAt(char* buf, size_t size, uint64_t off);
  int WriteAt(const char* buf, size_t size, uint64_t off);
  int PatchBlocks(const char* buf, size_t size, uint64_t off);
  void Abort();

  Disk& disk_;  // not owned; outlives the file
  const FuseFileOptions options_;
  // Whole-block writes hold it shared; a read-patch-write of a partial block
  // holds it exclusively, so that no other write lands between its read and
  // its write.
  std::shared_mutex patch_mu_;
  fuse* fuse_ = nullptr;  // owned: fuse_destroy in Stop
  bool mounted_ = false;
  timespec started_{};    // the file's times: when it appeared
  dev_t conn_ = 0;        // the mount's device: its minor is the FUSE connection's number
  std::thread loop_;      // runs fuse_loop_mt until the connection ends
  std::future<void> loop_done_;
};

namespace {

int ErrnoOf(const Error& e) {
  switch (e.code) {
    case Errc::kNoDevice: return ENODEV;
    case Errc::kTimeout: return ETIMEDOUT;
    case Errc::kInvalidArgument: return EINVAL;
    case Errc::kParse:
    case Errc::kNotFound:
    case Errc::kAlreadyExists:
    case Errc::kBusy:
    case Errc::kInterrupted:
    case Errc::kProtocol:
    case Errc::kDeviceFailed:
    case Errc::kUnavailable:
    case Errc::kIo:
    case Errc::kInternal: return EIO;
  }
  return EIO;
}

bool IsRoot(const char* path) { return std::strcmp(path, "/") == 0; }

const fuse_operations kOperations = [] {
  fuse_operations ops{};
  ops.getattr = FuseFile::Impl::GetAttr;
  ops.open = FuseFile::Impl::Open;
  ops.read = FuseFile::Impl::Read;
  ops.write = FuseFile::Impl::Write;
  ops.fsync = FuseFile::Impl::Fsync;
  ops.truncate = FuseFile::Impl::Truncate;
  ops.fallocate = FuseFile::Impl::Fallocate;
  ops.init = FuseFile::Impl::Init;
  return ops;
}();

}  // namespace

void* FuseFile::Impl::Init(fuse_conn_info* conn, fuse_config* cfg) {
  Impl& self = Self();
  cfg->kernel_cache = self.options_.kernel_cache ? 1 : 0;
  cfg->direct_io = self.options_.kernel_cache ? 0 : 1;
  cfg->attr_timeout = 3600;  // the size never changes
  cfg->use_ino = 1;
  conn->max_write = std::max<unsigned>(conn->max_write, 1u << 20);
  return &self;
}

int FuseFile::Impl::GetAttr(const char* path, struct stat* st, fuse_file_info*) {
  if (!IsRoot(path)) return -ENOENT;
  Impl& self = Self();
  std::memset(st, 0, sizeof *st);
  st->st_mode = S_IFREG | 0600;
  st->st_nlink = 1;
  st->st_uid = ::geteuid();
  st->st_gid = ::getegid();
  st->st_size = static_cast<off_t>(self.size_bytes());
  st->st_blksize = self.disk_.block_size();
  st->st_blocks = st->st_size / 512;
  st->st_ino = 1;
  st->st_mtim = st->st_ctim = st->st_atim = self.started_;
  return 0;
}

int FuseFile::Impl::Open(const char* path, fuse_file_info* fi) {
  if (!IsRoot(path)) return -ENOENT;
  if (fi->flags & O_DIRECT) fi->direct_io = 1;  // O_DIRECT readers and writers bypass the page cache
  return 0;
}

int FuseFile::Impl::Read(const char*, char* buf, size_t size, off_t off, fuse_file_info*) {
  return Self().ReadAt(buf, size, static_cast<uint64_t>(off));
}

int FuseFile::Impl::Write(const char*, const char* buf, size_t size, off_t off, fuse_file_info*) {
  return Self().WriteAt(buf, size, static_cast<uint64_t>(off));
}

int FuseFile::Impl::Fsync(const char*, int, fuse_file_info*) {
  auto r = Self().disk_.Flush();
  return r ? 0 : -ErrnoOf(r.error());
}

int FuseFile::Impl::Truncate(const char*, off_t size, fuse_file_info*) {
  return static_cast<uint64_t>(size) == Self().size_bytes() ? 0 : -EPERM;
}

int FuseFile::Impl::Fallocate(const char*, int mode, off_t off, off_t len, fuse_file_info*) {
  Impl& self = Self();
  const uint64_t bs = self.disk_.block_size();
  if (mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) return -EOPNOTSUPP;
  if (off < 0 || len <= 0 || static_cast<uint64_t>(off + len) > self.size_bytes()) return -EINVAL;
  // Only whole blocks are discarded; the edges keep their data (a hole reads
  // as zeros only where the disk says so, which a punch may not promise).
  const uint64_t first = (static_cast<uint64_t>(off) + bs - 1) / bs;
  const uint64_t end = static_cast<uint64_t>(off + len) / bs;
  for (uint64_t lba = first; lba < end;) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(end - lba, self.disk_.max_io_blocks()));
    std::shared_lock lock(self.patch_mu_);
    if (auto r = self.disk_.Discard(lba, n); !r) return -ErrnoOf(r.error());
    lba += n;
  }
  return 0;
}

int FuseFile::Impl::ReadAt(char* buf, size_t size, uint64_t off) {
  const uint64_t total = size_bytes();
  if (off >= total) return 0;
  size = static_cast<size_t>(std::min<uint64_t>(size, total - off));
  const uint64_t bs = disk_.block_size();
  if (off % bs == 0 && size % bs == 0) {
    auto r = disk_.Read(off / bs, {reinterpret_cast<std::byte*>(buf), size});
    return r ? static_cast<int>(size) : -ErrnoOf(r.error());
  }
  const uint64_t first = off / bs;
  const uint64_t end = (off + size + bs - 1) / bs;
  std::vector<std::byte> blocks((end - first) * bs);
  if (auto r = disk_.Read(first, blocks); !r) return -ErrnoOf(r.error());
  std::memcpy(buf, blocks.data() + (off - first * bs), size);
  return static_cast<int>(size);
}

int FuseFile::Impl::WriteAt(const char* buf, size_t size, uint64_t off) {
  const uint64_t total = size_bytes();
  if (off >= total || size > total - off) return -ENOSPC;  // a disk does not grow
  const uint64_t bs = disk_.block_size();
  if (off % bs != 0 || size % bs != 0) return PatchBlocks(buf, size, off);
  std::shared_lock lock(patch_mu_);
  auto r = disk_.Write(off / bs, {reinterpret_cast<const std::byte*>(buf), size});
  return r ? static_cast<int>(size) : -ErrnoOf(r.error());
}

int FuseFile::Impl::PatchBlocks(const char* buf, size_t size, uint64_t off) {
  const uint64_t bs = disk_.block_size();
  const uint64_t first = off / bs;
  const uint64_t end = (off + size + bs - 1) / bs;
  std::vector<std::byte> blocks((end - first) * bs);
  std::unique_lock lock(patch_mu_);
  if (auto r = disk_.Read(first, blocks); !r) return -ErrnoOf(r.error());
  std::memcpy(blocks.data() + (off - first * bs), buf, size);
  if (auto r = disk_.Write(first, blocks); !r) return -ErrnoOf(r.error());
  return static_cast<int>(size);
}

Result<void> FuseFile::Impl::Start() {
  if (::access("/dev/fuse", R_OK | W_OK) != 0) return Fail(Errc::kUnavailable, "no usable /dev/fuse");
  ::clock_gettime(CLOCK_REALTIME, &started_);
  // A file left mounted by a run that was killed answers ENOTCONN: detach it.
  // (stat may still answer from the kernel's attribute cache; access asks.)
  if (::access(options_.path.c_str(), W_OK) != 0 && errno == ENOTCONN) {
    ::umount2(options_.path.c_str(), MNT_DETACH);
  }
  if (::access(options_.path.c_str(), F_OK) != 0) {
    const int fd = ::open(options_.path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) return FailErrno("making " + options_.path);
    ::close(fd);
  }
  fuse_args args = FUSE_ARGS_INIT(0, nullptr);
  fuse_opt_add_arg(&args, "umbra-block");
  fuse_opt_add_arg(&args, "-o");
  fuse_opt_add_arg(&args, "fsname=umbra,subtype=umbra-block");
  fuse_ = fuse_new(&args, &kOperations, sizeof kOperations, this);
  fuse_opt_free_args(&args);
  if (!fuse_) return Fail(Errc::kUnavailable, "libfuse could not start");
  if (fuse_mount(fuse_, options_.path.c_str()) != 0) {
    return Fail(Errc::kUnavailable, "cannot mount FUSE on " + options_.path + " (no permission to mount?)");
  }
  mounted_ = true;
  std::promise<void> done;
  loop_done_ = done.get_future();
  loop_ = std::thread([this, done = std::move(done)]() mutable {
    fuse_loop_config* config = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(config, options_.max_threads);
    fuse_loop_cfg_set_idle_threads(config, options_.max_threads);
    (void)fuse_loop_mt(fuse_, config);
    fuse_loop_cfg_destroy(config);
    done.set_value();
  });
  // Only now: a stat of the mount waits for the loop to answer it.
  struct stat st {};
  if (::stat(options_.path.c_str(), &st) == 0) conn_ = st.st_dev;
  return {};
}

// Ends the FUSE connection, which wakes every worker with ENODEV.
void FuseFile::Impl::Abort() {
  // The fusectl file system may not be mounted yet (systemd usually does it).
  if (::access(("/sys/fs/fuse/connections/" + std::to_string(minor(conn_))).c_str(), F_OK) != 0) {
    ::mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, nullptr);
  }
  std::ofstream abort("/sys/fs/fuse/connections/" + std::to_string(minor(conn_)) + "/abort");
  abort << "1\n";
}

void FuseFile::Impl::Stop() {
  if (!fuse_) return;
  if (mounted_) {
    fuse_exit(fuse_);
    // Detached now; the connection ends when nothing uses the file any more
    // (a loop device may still hold it): then it is cut.
    ::umount2(options_.path.c_str(), MNT_DETACH);
    if (loop_.joinable() && loop_done_.wait_for(std::chrono::seconds(1)) != std::future_status::ready) Abort();
  }
  if (loop_.joinable()) loop_.join();
  if (mounted_) fuse_unmount(fuse_);
  fuse_destroy(fuse_);
  fuse_ = nullptr;
  mounted_ = false;
}

Result<std::unique_ptr<FuseFile>> FuseFile::Create(Disk& disk, FuseFileOptions options) {
  if (options.path.empty()) return Fail(Errc::kInvalidArgument, "the FUSE file has no path");
  auto impl = std::make_unique<Impl>(disk, std::move(options));
  UMBRA_TRY(impl->Start());
  return std::unique_ptr<FuseFile>(new FuseFile(std::move(impl)));
}

FuseFile::FuseFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FuseFile::~FuseFile() = default;
const std::string& FuseFile::path() const { return impl_->path(); }

}  // namespace umbra::shadows::block
