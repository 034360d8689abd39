#include "shadows/block/frontend/fuse_file.h"

#define FUSE_USE_VERSION 312
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/falloc.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

namespace umbra::shadows::block {
namespace {

int ErrnoOf(Errc code) {
  switch (code) {
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

// One FUSE read or write in the disk: answered by the reaper once its last
// piece (a request larger than the disk's largest I/O is split) completed.
struct Pending {
  fuse_req_t req = nullptr;
  bool write = false;
  size_t size = 0;                      // bytes the file operation asked for
  size_t skip = 0;                      // read: bytes of the first block before the asked ones
  std::unique_ptr<std::byte[]> blocks;  // read: the whole blocks read
  std::atomic<uint32_t> pieces{0};      // not completed yet
  std::atomic<int> error{0};            // the first piece's errno, 0 if none
};

}  // namespace

class FuseFile::Impl {
 public:
  Impl(Disk& disk, FuseFileOptions options) : disk_(disk), options_(std::move(options)) {}
  ~Impl() { Stop(); }

  Result<void> Start();
  void Stop();
  const std::string& path() const { return options_.path; }

  // The file's operations (libfuse's low-level API), called by its worker threads.
  static void Init(void* self, fuse_conn_info* conn);
  static void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  static void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi);
  static void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  static void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
  static void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi);
  static void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
  static void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, fuse_file_info* fi);

 private:
  static Impl& Self(fuse_req_t req) { return *static_cast<Impl*>(fuse_req_userdata(req)); }
  uint64_t size_bytes() const { return disk_.capacity_blocks() * disk_.block_size(); }
  void FillStat(struct stat* st) const;
  void ReadAt(fuse_req_t req, size_t size, uint64_t off);
  void WriteAt(fuse_req_t req, const char* buf, size_t size, uint64_t off);
  int PatchBlocks(const char* buf, size_t size, uint64_t off);
  // Queues `pending`'s blocks [lba, lba + blocks) to the disk, split into
  // pieces the disk takes; the reaper answers once all completed.
  void SubmitPieces(std::unique_ptr<Pending> pending, uint16_t op, uint64_t lba, uint32_t blocks, std::byte* data);
  void PieceDone(Pending* p, int error);
  void Answer(Pending* p);
  void ReapLoop();
  void Abort();

  Disk& disk_;  // not owned; outlives the file
  const FuseFileOptions options_;
  // Whole-block writes hold it shared while they are queued; a
  // read-patch-write of a partial block holds it exclusively and waits until
  // no write is in the disk, so that no other write lands between its read
  // and its write.
  std::shared_mutex patch_mu_;
  std::mutex writes_mu_;
  std::condition_variable writes_cv_;
  uint64_t writes_in_disk_ = 0;       // guarded by writes_mu_
  std::atomic<uint64_t> in_disk_{0};  // Pending objects not answered yet
  // Pieces the disk took and the reaper has not reaped yet (may go below 0
  // for a moment: a completion can be reaped before its Submit returned).
  // The reaper waits for it here, not in the disk: the disk's Reap, with
  // nothing submitted, looks again only every millisecond.
  std::mutex queued_mu_;
  std::condition_variable queued_cv_;
  int64_t queued_ = 0;  // guarded by queued_mu_
  std::atomic<bool> stop_reaper_{false};
  fuse_session* session_ = nullptr;  // owned: fuse_session_destroy in Stop
  bool mounted_ = false;
  timespec started_{};  // the file's times: when it appeared
  dev_t conn_ = 0;      // the mount's device: its minor is the FUSE connection's number
  std::thread reaper_;  // answers reads and writes as the disk completes them
  std::thread loop_;    // runs fuse_session_loop_mt until the connection ends
  std::future<void> loop_done_;
};

namespace {

const fuse_lowlevel_ops kOperations = [] {
  fuse_lowlevel_ops ops{};
  ops.init = FuseFile::Impl::Init;
  ops.getattr = FuseFile::Impl::GetAttr;
  ops.setattr = FuseFile::Impl::SetAttr;
  ops.open = FuseFile::Impl::Open;
  ops.read = FuseFile::Impl::Read;
  ops.write = FuseFile::Impl::Write;
  ops.fsync = FuseFile::Impl::Fsync;
  ops.fallocate = FuseFile::Impl::Fallocate;
  return ops;
}();

constexpr double kAttrTimeout = 3600;  // the size never changes
constexpr int64_t kReapSliceNs = 50'000'000;

}  // namespace

void FuseFile::Impl::Init(void*, fuse_conn_info* conn) {
  conn->max_write = std::max<unsigned>(conn->max_write, 1u << 20);
  conn->max_read = 0;  // as large as the kernel sends
  if (conn->capable & FUSE_CAP_ASYNC_DIO) conn->want |= FUSE_CAP_ASYNC_DIO;
}

void FuseFile::Impl::FillStat(struct stat* st) const {
  std::memset(st, 0, sizeof *st);
  st->st_mode = S_IFREG | 0600;
  st->st_nlink = 1;
  st->st_uid = ::geteuid();
  st->st_gid = ::getegid();
  st->st_size = static_cast<off_t>(size_bytes());
  st->st_blksize = disk_.block_size();
  st->st_blocks = st->st_size / 512;
  st->st_ino = FUSE_ROOT_ID;
  st->st_mtim = st->st_ctim = st->st_atim = started_;
}

void FuseFile::Impl::GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  if (ino != FUSE_ROOT_ID) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct stat st {};
  Self(req).FillStat(&st);
  fuse_reply_attr(req, &st, kAttrTimeout);
}

// Only a truncate to the current size is taken: a disk does not grow. Times
// and modes are answered, not kept.
void FuseFile::Impl::SetAttr(fuse_req_t req, fuse_ino_t, struct stat* attr, int to_set, fuse_file_info*) {
  Impl& self = Self(req);
  if ((to_set & FUSE_SET_ATTR_SIZE) && static_cast<uint64_t>(attr->st_size) != self.size_bytes()) {
    fuse_reply_err(req, EPERM);
    return;
  }
  struct stat st {};
  self.FillStat(&st);
  fuse_reply_attr(req, &st, kAttrTimeout);
}

void FuseFile::Impl::Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino != FUSE_ROOT_ID) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  const Impl& self = Self(req);
  // O_DIRECT readers and writers bypass the page cache, and so does everyone
  // without kernel_cache.
  fi->direct_io = (fi->flags & O_DIRECT) || !self.options_.kernel_cache ? 1 : 0;
  fi->keep_cache = self.options_.kernel_cache ? 1 : 0;
  fuse_reply_open(req, fi);
}

void FuseFile::Impl::Read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info*) {
  Self(req).ReadAt(req, size, static_cast<uint64_t>(off));
}

void FuseFile::Impl::Write(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t off, fuse_file_info*) {
  Self(req).WriteAt(req, buf, size, static_cast<uint64_t>(off));
}

void FuseFile::Impl::Fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  auto r = Self(req).disk_.Flush();
  fuse_reply_err(req, r ? 0 : ErrnoOf(r.error().code));
}

void FuseFile::Impl::Fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t off, off_t len, fuse_file_info*) {
  Impl& self = Self(req);
  const uint64_t bs = self.disk_.block_size();
  if (mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) return (void)fuse_reply_err(req, EOPNOTSUPP);
  if (off < 0 || len <= 0 || static_cast<uint64_t>(off + len) > self.size_bytes()) {
    return (void)fuse_reply_err(req, EINVAL);
  }
  // Only whole blocks are discarded; the edges keep their data (a hole reads
  // as zeros only where the disk says so, which a punch may not promise).
  const uint64_t first = (static_cast<uint64_t>(off) + bs - 1) / bs;
  const uint64_t end = static_cast<uint64_t>(off + len) / bs;
  for (uint64_t lba = first; lba < end;) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(end - lba, self.disk_.max_io_blocks()));
    std::shared_lock lock(self.patch_mu_);
    if (auto r = self.disk_.Discard(lba, n); !r) return (void)fuse_reply_err(req, ErrnoOf(r.error().code));
    lba += n;
  }
  fuse_reply_err(req, 0);
}

// Reads the whole blocks under [off, off + size) into a buffer of the
// request's own; the reaper answers with the asked bytes.
void FuseFile::Impl::ReadAt(fuse_req_t req, size_t size, uint64_t off) {
  const uint64_t total = size_bytes();
  if (off >= total || size == 0) return (void)fuse_reply_buf(req, nullptr, 0);
  size = static_cast<size_t>(std::min<uint64_t>(size, total - off));
  const uint64_t bs = disk_.block_size();
  const uint64_t first = off / bs;
  const uint64_t end = (off + size + bs - 1) / bs;
  auto p = std::make_unique<Pending>();
  p->req = req;
  p->size = size;
  p->skip = off - first * bs;
  p->blocks.reset(new std::byte[(end - first) * bs]);
  std::byte* data = p->blocks.get();
  SubmitPieces(std::move(p), umbra::block::kRead, first, static_cast<uint32_t>(end - first), data);
}

void FuseFile::Impl::WriteAt(fuse_req_t req, const char* buf, size_t size, uint64_t off) {
  const uint64_t total = size_bytes();
  if (off >= total || size > total - off) return (void)fuse_reply_err(req, ENOSPC);  // a disk does not grow
  const uint64_t bs = disk_.block_size();
  if (off % bs != 0 || size % bs != 0) {
    const int r = PatchBlocks(buf, size, off);
    if (r < 0) return (void)fuse_reply_err(req, -r);
    return (void)fuse_reply_write(req, size);
  }
  auto p = std::make_unique<Pending>();
  p->req = req;
  p->write = true;
  p->size = size;
  std::shared_lock lock(patch_mu_);
  {
    std::lock_guard count(writes_mu_);
    ++writes_in_disk_;
  }
  // The disk copies a write's data when it is queued: `buf` may go after.
  SubmitPieces(std::move(p), umbra::block::kWrite, off / bs, static_cast<uint32_t>(size / bs),
               const_cast<std::byte*>(reinterpret_cast<const std::byte*>(buf)));
}

int FuseFile::Impl::PatchBlocks(const char* buf, size_t size, uint64_t off) {
  const uint64_t bs = disk_.block_size();
  const uint64_t first = off / bs;
  const uint64_t end = (off + size + bs - 1) / bs;
  std::vector<std::byte> blocks((end - first) * bs);
  std::unique_lock lock(patch_mu_);
  {
    std::unique_lock count(writes_mu_);
    writes_cv_.wait(count, [&] { return writes_in_disk_ == 0; });
  }
  if (auto r = disk_.Read(first, blocks); !r) return -ErrnoOf(r.error().code);
  std::memcpy(blocks.data() + (off - first * bs), buf, size);
  if (auto r = disk_.Write(first, blocks); !r) return -ErrnoOf(r.error().code);
  return static_cast<int>(size);
}

void FuseFile::Impl::SubmitPieces(std::unique_ptr<Pending> pending, uint16_t op, uint64_t lba, uint32_t blocks,
                                  std::byte* data) {
  const uint32_t step = std::max<uint32_t>(1, disk_.max_io_blocks());
  const uint32_t pieces = (blocks + step - 1) / step;
  Pending* p = pending.release();  // answered and freed by the last piece
  p->pieces = pieces;
  ++in_disk_;
  for (uint32_t i = 0; i < pieces; ++i) {
    const uint32_t done = i * step;
    const Io io{.op = op,
                .lba = lba + done,
                .blocks = std::min(step, blocks - done),
                .data = data + uint64_t{done} * disk_.block_size(),
                .user_data = reinterpret_cast<uint64_t>(p)};
    if (auto r = disk_.Submit(io, kDefaultIoTimeoutNs); !r) {
      // This piece and the ones never queued count as done, failed.
      const int error = ErrnoOf(r.error().code);
      for (uint32_t k = i; k < pieces; ++k) PieceDone(p, error);
      return;
    }
    {
      std::lock_guard lock(queued_mu_);
      ++queued_;
    }
    queued_cv_.notify_one();
  }
}

void FuseFile::Impl::PieceDone(Pending* p, int error) {
  int none = 0;
  if (error != 0) p->error.compare_exchange_strong(none, error);
  if (p->pieces.fetch_sub(1) == 1) Answer(p);
}

void FuseFile::Impl::Answer(Pending* p) {
  std::unique_ptr<Pending> own(p);
  const int error = p->error.load();
  if (error != 0) {
    fuse_reply_err(p->req, error);
  } else if (p->write) {
    fuse_reply_write(p->req, p->size);
  } else {
    fuse_reply_buf(p->req, reinterpret_cast<const char*>(p->blocks.get()) + p->skip, p->size);
  }
  if (p->write) {
    std::lock_guard count(writes_mu_);
    if (--writes_in_disk_ == 0) writes_cv_.notify_all();
  }
  --in_disk_;
}

// The one thread that reaps the disk's completions and answers FUSE; it ends
// once asked to and nothing is in the disk any more (or the disk is gone, or
// still has not answered 5 s after the stop: the connection is gone by then).
void FuseFile::Impl::ReapLoop() {
  IoDone done[64];
  std::chrono::steady_clock::time_point give_up = std::chrono::steady_clock::time_point::max();
  while (!stop_reaper_ || in_disk_ > 0) {
    if (stop_reaper_ && give_up == std::chrono::steady_clock::time_point::max()) {
      give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    }
    if (std::chrono::steady_clock::now() > give_up) return;
    {
      std::unique_lock lock(queued_mu_);
      if (!queued_cv_.wait_for(lock, std::chrono::nanoseconds(kReapSliceNs), [&] { return queued_ > 0; })) continue;
    }
    auto n = disk_.Reap(done, 1, kReapSliceNs);
    if (!n) {
      if (n.error().code == Errc::kTimeout) continue;
      if (stop_reaper_) return;  // the disk is gone: what is in it is not answered
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    {
      std::lock_guard lock(queued_mu_);
      queued_ -= static_cast<int64_t>(*n);
    }
    for (size_t i = 0; i < *n; ++i) {
      const int error = done[i].status == 0 ? 0 : ErrnoOf(static_cast<Errc>(done[i].status));
      PieceDone(reinterpret_cast<Pending*>(done[i].user_data), error);
    }
  }
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
  session_ = fuse_session_new(&args, &kOperations, sizeof kOperations, this);
  fuse_opt_free_args(&args);
  if (!session_) return Fail(Errc::kUnavailable, "libfuse could not start");
  if (fuse_session_mount(session_, options_.path.c_str()) != 0) {
    return Fail(Errc::kUnavailable, "cannot mount FUSE on " + options_.path + " (no permission to mount?)");
  }
  mounted_ = true;
  reaper_ = std::thread([this] { ReapLoop(); });
  std::promise<void> done;
  loop_done_ = done.get_future();
  loop_ = std::thread([this, done = std::move(done)]() mutable {
    fuse_loop_config* config = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(config, options_.max_threads);
    fuse_loop_cfg_set_idle_threads(config, options_.max_threads);
    (void)fuse_session_loop_mt(session_, config);
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
  if (!session_) return;
  if (mounted_) {
    fuse_session_exit(session_);
    // Detached now; the connection ends when nothing uses the file any more
    // (a loop device may still hold it): then it is cut.
    ::umount2(options_.path.c_str(), MNT_DETACH);
    if (loop_.joinable() && loop_done_.wait_for(std::chrono::seconds(1)) != std::future_status::ready) Abort();
  }
  if (loop_.joinable()) loop_.join();
  stop_reaper_ = true;
  if (reaper_.joinable()) reaper_.join();
  if (mounted_) fuse_session_unmount(session_);
  fuse_session_destroy(session_);
  session_ = nullptr;
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
