// BlockVfs: an SQLite VFS that keeps SQLite's files on a block::Disk, so a
// real database engine is the block class's client.
//
// Layout: the disk region is cut into `files` equal extents; the first block
// of each is its header (magic, used, size, name), the rest its bytes. The
// database, its rollback journal and any other file SQLite opens each take
// one free extent, found by name. Headers are cached in memory (this VFS is
// the disk's only user) and written through on every change; xSync is a
// Disk::Flush, so SQLite's own ordering (journal synced before the database
// is written, the database synced before the journal is deleted) becomes
// flush barriers on the device.
//
//   auto vfs = UMBRA_TRY(BlockVfs::Create(disk, {.name = "umbra0"}));
//   sqlite3_open_v2("app.db", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "umbra0");
//
// Reads and writes that do not cover whole blocks read the block first
// (read-modify-write). A Disk error becomes SQLITE_IOERR_*: what SQLite
// shows its caller when the driver's failures are not hidden.
//
// Thread safety: one SQLite connection at a time (no locking between
// connections: the VFS's lock methods always succeed).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "shadows/block/disk.h"

struct sqlite3_vfs;

namespace umbra::shadows::block {

class BlockVfs {
 public:
  struct Options {
    std::string name = "umbra-block";
    uint64_t first_lba = 0;
    uint64_t blocks = 0;  // 0: to the end of the disk
    uint32_t files = 4;
    bool make_default = false;
  };

  // Reads the file headers and registers the VFS with SQLite.
  static Result<std::unique_ptr<BlockVfs>> Create(Disk& disk, Options options);
  // Unregisters the VFS; no connection may still use it.
  ~BlockVfs();
  BlockVfs(const BlockVfs&) = delete;
  BlockVfs& operator=(const BlockVfs&) = delete;

  const std::string& name() const { return options_.name; }
  uint64_t io_errors() const { return io_errors_; }
  const std::string& last_error() const { return last_error_; }

  // Used by the sqlite3_io_methods trampolines (private in spirit).
  struct Header {
    uint64_t magic = 0;
    uint64_t size = 0;
    uint32_t used = 0;
    char name[236] = {};
  };
  int Open(const char* name, int flags, int* region);
  int Delete(const char* name, bool sync);
  int Access(const char* name, int* out);
  int ReadAt(int region, void* out, int amount, int64_t offset);
  int WriteAt(int region, const void* in, int amount, int64_t offset);
  int Truncate(int region, int64_t size);
  int Sync();
  int64_t FileSize(int region) const { return headers_[region].size; }
  void Close(int region);
  uint32_t sector_size() const { return block_size_; }

 private:
  BlockVfs(Disk& disk, Options options, uint32_t block_size, uint64_t extent_blocks);
  int Find(const char* name) const;
  Result<void> WriteHeader(int region);
  Result<void> Transfer(int region, bool write, std::byte* data, uint64_t n, uint64_t offset);
  int IoError(int code, const Error& e);
  uint64_t ExtentLba(int region) const { return options_.first_lba + uint64_t(region) * extent_blocks_; }

  Disk& disk_;  // the device; outlives the VFS
  Options options_;
  uint32_t block_size_;
  uint64_t extent_blocks_;
  std::vector<Header> headers_;
  std::vector<int> delete_on_close_;
  std::vector<std::byte> scratch_;
  uint64_t io_errors_ = 0;
  std::string last_error_;
  uint64_t temp_counter_ = 0;
  std::unique_ptr<sqlite3_vfs> vfs_;  // registered with SQLite while this object lives
};

}  // namespace umbra::shadows::block
