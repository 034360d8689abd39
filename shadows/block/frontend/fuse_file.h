// FuseFile: a block::Disk as one regular file, through FUSE (libfuse3), so
// that programs nobody here wrote — fio, losetup + mkfs.ext4 + mount,
// sqlite3 — run on a shadowed disk.
//
// The file is mounted on a path of its own (a regular file the frontend
// makes; FUSE can mount over a file) and is exactly the disk's capacity:
//   read      → block reads (unaligned edges read whole blocks)
//   write     → block writes; a partial block is read, patched, written back
//               (one partial write at a time, once no other write is in the
//               disk; whole-block writes run in parallel)
//   fsync     → Disk::Flush: an acknowledged fsync is durable, the shadow
//               keeps it so across driver crashes
//   fallocate(PUNCH_HOLE|KEEP_SIZE) on whole blocks → Disk::Discard
//   truncate  → refused unless to the current size (a disk does not grow)
// libfuse's low-level API: its worker threads queue reads and writes to the
// disk (Disk::Submit) and return at once; one reaper thread takes the
// completions (Disk::Reap) and answers the kernel. So a queue depth of N in
// the application is N requests in the disk, without N threads waiting.
// fsync, discards and partial-block writes are done synchronously.
//
//   auto file = UMBRA_TRY(FuseFile::Create(*shadow, {.path = "/run/…/disk0"}));
//   // fio --filename=/run/…/disk0 …;  losetup -f /run/…/disk0 …
//   file.reset();  // unmounts (lazily when still in use), joins the threads
//
// Thread safety: Create and the destructor from one thread; the Disk must be
// safe to call from several threads (BlockShadow is) and outlive the file.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "shadows/block/disk.h"

namespace umbra::shadows::block {

struct FuseFileOptions {
  std::string path;           // where the file appears; made if missing
  unsigned max_threads = 64;  // libfuse worker threads (they only queue: few are busy at once)
  // Let the kernel cache the file's pages (faster buffered I/O; fsync still
  // reaches the disk). Off: every read and write goes to the disk.
  bool kernel_cache = true;
};

class FuseFile {
 public:
  // Mounts the file and starts serving. Errors: no /dev/fuse or no
  // permission to mount (kUnavailable), the path cannot be made (kIo).
  static Result<std::unique_ptr<FuseFile>> Create(Disk& disk, FuseFileOptions options);
  ~FuseFile();
  FuseFile(const FuseFile&) = delete;
  FuseFile& operator=(const FuseFile&) = delete;

  const std::string& path() const;

  class Impl;

 private:
  explicit FuseFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace umbra::shadows::block
