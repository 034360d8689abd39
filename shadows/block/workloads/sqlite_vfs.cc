#include "shadows/block/workloads/sqlite_vfs.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>

namespace umbra::shadows::block {

namespace {

constexpr uint64_t kHeaderMagic = 0x5346564152424D55ull;  // "UMBRAVFS"
static_assert(sizeof(BlockVfs::Header) == 256);

struct BlockFile {
  sqlite3_file base;
  BlockVfs* vfs;
  int region;
};

BlockVfs* VfsOf(sqlite3_vfs* v) { return static_cast<BlockVfs*>(v->pAppData); }
BlockFile* FileOf(sqlite3_file* f) { return reinterpret_cast<BlockFile*>(f); }

int XClose(sqlite3_file* f) {
  FileOf(f)->vfs->Close(FileOf(f)->region);
  return SQLITE_OK;
}
int XRead(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  return FileOf(f)->vfs->ReadAt(FileOf(f)->region, out, amount, offset);
}
int XWrite(sqlite3_file* f, const void* in, int amount, sqlite3_int64 offset) {
  return FileOf(f)->vfs->WriteAt(FileOf(f)->region, in, amount, offset);
}
int XTruncate(sqlite3_file* f, sqlite3_int64 size) { return FileOf(f)->vfs->Truncate(FileOf(f)->region, size); }
int XSync(sqlite3_file* f, int) { return FileOf(f)->vfs->Sync(); }
int XFileSize(sqlite3_file* f, sqlite3_int64* size) {
  *size = FileOf(f)->vfs->FileSize(FileOf(f)->region);
  return SQLITE_OK;
}
int XLock(sqlite3_file*, int) { return SQLITE_OK; }
int XUnlock(sqlite3_file*, int) { return SQLITE_OK; }
int XCheckReservedLock(sqlite3_file*, int* out) {
  *out = 0;
  return SQLITE_OK;
}
int XFileControl(sqlite3_file*, int, void*) { return SQLITE_NOTFOUND; }
int XSectorSize(sqlite3_file* f) { return static_cast<int>(FileOf(f)->vfs->sector_size()); }
int XDeviceCharacteristics(sqlite3_file*) { return 0; }

const sqlite3_io_methods kIoMethods = {
    .iVersion = 1,
    .xClose = XClose,
    .xRead = XRead,
    .xWrite = XWrite,
    .xTruncate = XTruncate,
    .xSync = XSync,
    .xFileSize = XFileSize,
    .xLock = XLock,
    .xUnlock = XUnlock,
    .xCheckReservedLock = XCheckReservedLock,
    .xFileControl = XFileControl,
    .xSectorSize = XSectorSize,
    .xDeviceCharacteristics = XDeviceCharacteristics,
};

int XOpen(sqlite3_vfs* v, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  BlockFile* file = FileOf(f);
  file->base.pMethods = nullptr;
  int region = -1;
  const int rc = VfsOf(v)->Open(name, flags, &region);
  if (rc != SQLITE_OK) return rc;
  file->base.pMethods = &kIoMethods;
  file->vfs = VfsOf(v);
  file->region = region;
  if (out_flags != nullptr) *out_flags = flags;
  return SQLITE_OK;
}
int XDelete(sqlite3_vfs* v, const char* name, int sync_dir) { return VfsOf(v)->Delete(name, sync_dir != 0); }
int XAccess(sqlite3_vfs* v, const char* name, int, int* out) { return VfsOf(v)->Access(name, out); }
int XFullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  std::snprintf(out, static_cast<size_t>(n), "%s", name);
  return SQLITE_OK;
}
int XRandomness(sqlite3_vfs*, int n, char* out) {
  static thread_local std::mt19937 rng(std::random_device{}());
  for (int i = 0; i < n; ++i) out[i] = static_cast<char>(rng());
  return n;
}
int XSleep(sqlite3_vfs*, int us) {
  ::usleep(static_cast<useconds_t>(us));
  return us;
}
int XCurrentTime(sqlite3_vfs*, double* out) {
  *out = 2440587.5 + static_cast<double>(::time(nullptr)) / 86400.0;
  return SQLITE_OK;
}
int XGetLastError(sqlite3_vfs*, int, char*) { return 0; }

}  // namespace

BlockVfs::BlockVfs(Disk& disk, Options options, uint32_t block_size, uint64_t extent_blocks)
    : disk_(disk), options_(std::move(options)), block_size_(block_size), extent_blocks_(extent_blocks),
      headers_(options_.files), delete_on_close_(options_.files, 0), scratch_(block_size) {}

Result<std::unique_ptr<BlockVfs>> BlockVfs::Create(Disk& disk, Options options) {
  const uint32_t bs = disk.block_size();
  if (options.blocks == 0)
    options.blocks = disk.capacity_blocks() - std::min(options.first_lba, disk.capacity_blocks());
  if (options.files == 0 || options.blocks / options.files < 2 || bs < sizeof(Header)) {
    return Fail(Errc::kInvalidArgument, "block VFS: region of " + std::to_string(options.blocks) +
                                            " blocks too small for " + std::to_string(options.files) + " files");
  }
  const uint64_t extent = options.blocks / options.files;
  std::unique_ptr<BlockVfs> vfs(new BlockVfs(disk, std::move(options), bs, extent));
  std::vector<std::byte> block(bs);
  for (uint32_t i = 0; i < vfs->options_.files; ++i) {
    UMBRA_TRY(disk.Read(vfs->ExtentLba(static_cast<int>(i)), block));
    Header h;
    std::memcpy(&h, block.data(), sizeof h);
    h.name[sizeof h.name - 1] = '\0';
    if (h.magic != kHeaderMagic) h = Header{};
    vfs->headers_[i] = h;
  }
  vfs->vfs_ = std::make_unique<sqlite3_vfs>();
  sqlite3_vfs& v = *vfs->vfs_;
  v.iVersion = 1;
  v.szOsFile = sizeof(BlockFile);
  v.mxPathname = sizeof(Header::name) - 1;
  v.zName = vfs->options_.name.c_str();
  v.pAppData = vfs.get();
  v.xOpen = XOpen;
  v.xDelete = XDelete;
  v.xAccess = XAccess;
  v.xFullPathname = XFullPathname;
  v.xRandomness = XRandomness;
  v.xSleep = XSleep;
  v.xCurrentTime = XCurrentTime;
  v.xGetLastError = XGetLastError;
  if (sqlite3_vfs_register(&v, vfs->options_.make_default ? 1 : 0) != SQLITE_OK) {
    vfs->vfs_.reset();
    return Fail(Errc::kInternal, "sqlite3_vfs_register refused " + vfs->options_.name);
  }
  return vfs;
}

BlockVfs::~BlockVfs() {
  if (vfs_) sqlite3_vfs_unregister(vfs_.get());
}

int BlockVfs::IoError(int code, const Error& e) {
  ++io_errors_;
  last_error_ = e.ToString();
  return code;
}

int BlockVfs::Find(const char* name) const {
  for (size_t i = 0; i < headers_.size(); ++i) {
    if (headers_[i].used != 0 && std::strncmp(headers_[i].name, name, sizeof(Header::name)) == 0) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

Result<void> BlockVfs::WriteHeader(int region) {
  std::fill(scratch_.begin(), scratch_.end(), std::byte{0});
  std::memcpy(scratch_.data(), &headers_[region], sizeof(Header));
  return disk_.Write(ExtentLba(region), scratch_);
}

int BlockVfs::Open(const char* name, int flags, int* region) {
  std::string generated;
  if (name == nullptr) {
    generated = "temp-" + std::to_string(++temp_counter_);
    name = generated.c_str();
  }
  if (std::strlen(name) >= sizeof(Header::name)) return SQLITE_CANTOPEN;
  int r = Find(name);
  if (r < 0) {
    if ((flags & SQLITE_OPEN_CREATE) == 0) return SQLITE_CANTOPEN;
    for (size_t i = 0; i < headers_.size() && r < 0; ++i) {
      if (headers_[i].used == 0) r = static_cast<int>(i);
    }
    if (r < 0) return SQLITE_CANTOPEN;
    Header h{.magic = kHeaderMagic, .size = 0, .used = 1};
    std::snprintf(h.name, sizeof h.name, "%s", name);
    headers_[r] = h;
    if (auto w = WriteHeader(r); !w) {
      headers_[r] = Header{};
      return IoError(SQLITE_IOERR_WRITE, w.error());
    }
  }
  delete_on_close_[r] = (flags & SQLITE_OPEN_DELETEONCLOSE) != 0;
  *region = r;
  return SQLITE_OK;
}

void BlockVfs::Close(int region) {
  if (!delete_on_close_[region]) return;
  headers_[region] = Header{};
  delete_on_close_[region] = 0;
  (void)WriteHeader(region);
}

int BlockVfs::Delete(const char* name, bool sync) {
  const int r = Find(name);
  if (r < 0) return SQLITE_IOERR_DELETE_NOENT;
  const Header old = headers_[r];
  headers_[r] = Header{};
  if (auto w = WriteHeader(r); !w) {
    headers_[r] = old;
    return IoError(SQLITE_IOERR_DELETE, w.error());
  }
  if (sync) {
    if (auto f = disk_.Flush(); !f) return IoError(SQLITE_IOERR_DELETE, f.error());
  }
  return SQLITE_OK;
}

int BlockVfs::Access(const char* name, int* out) {
  const int r = Find(name);
  *out = r >= 0 && headers_[r].size > 0 ? 1 : 0;
  return SQLITE_OK;
}

Result<void> BlockVfs::Transfer(int region, bool write, std::byte* data, uint64_t n, uint64_t offset) {
  const uint64_t base = ExtentLba(region) + 1;  // after the header
  while (n > 0) {
    const uint64_t lba = base + offset / block_size_;
    const uint64_t in_block = offset % block_size_;
    if (in_block == 0 && n >= block_size_) {
      // Whole blocks straight from / to the caller's buffer.
      const uint64_t whole = n - n % block_size_;
      std::span<std::byte> span{data, whole};
      UMBRA_TRY(write ? disk_.Write(lba, span) : disk_.Read(lba, span));
      data += whole;
      offset += whole;
      n -= whole;
      continue;
    }
    const uint64_t part = std::min<uint64_t>(n, block_size_ - in_block);
    UMBRA_TRY(disk_.Read(lba, scratch_));
    if (write) {
      std::memcpy(scratch_.data() + in_block, data, part);
      UMBRA_TRY(disk_.Write(lba, scratch_));
    } else {
      std::memcpy(data, scratch_.data() + in_block, part);
    }
    data += part;
    offset += part;
    n -= part;
  }
  return {};
}

int BlockVfs::ReadAt(int region, void* out, int amount, int64_t offset) {
  const uint64_t size = headers_[region].size;
  const uint64_t off = static_cast<uint64_t>(offset);
  const uint64_t avail = off >= size ? 0 : std::min<uint64_t>(static_cast<uint64_t>(amount), size - off);
  auto* p = static_cast<std::byte*>(out);
  if (avail > 0) {
    if (auto r = Transfer(region, false, p, avail, off); !r) return IoError(SQLITE_IOERR_READ, r.error());
  }
  if (avail == static_cast<uint64_t>(amount)) return SQLITE_OK;
  std::memset(p + avail, 0, static_cast<size_t>(amount) - avail);
  return SQLITE_IOERR_SHORT_READ;
}

int BlockVfs::WriteAt(int region, const void* in, int amount, int64_t offset) {
  const uint64_t end = static_cast<uint64_t>(offset) + static_cast<uint64_t>(amount);
  if (end > (extent_blocks_ - 1) * block_size_) return SQLITE_FULL;
  auto* p = const_cast<std::byte*>(static_cast<const std::byte*>(in));
  if (auto r = Transfer(region, true, p, static_cast<uint64_t>(amount), static_cast<uint64_t>(offset)); !r) {
    return IoError(SQLITE_IOERR_WRITE, r.error());
  }
  if (end <= headers_[region].size) return SQLITE_OK;
  headers_[region].size = end;
  if (auto w = WriteHeader(region); !w) return IoError(SQLITE_IOERR_WRITE, w.error());
  return SQLITE_OK;
}

int BlockVfs::Truncate(int region, int64_t size) {
  if (static_cast<uint64_t>(size) >= headers_[region].size) return SQLITE_OK;
  headers_[region].size = static_cast<uint64_t>(size);
  if (auto w = WriteHeader(region); !w) return IoError(SQLITE_IOERR_TRUNCATE, w.error());
  return SQLITE_OK;
}

int BlockVfs::Sync() {
  if (auto f = disk_.Flush(); !f) return IoError(SQLITE_IOERR_FSYNC, f.error());
  return SQLITE_OK;
}

}  // namespace umbra::shadows::block
