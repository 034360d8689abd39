// ImageFile: the disk's backing store, a regular file of whole blocks.
//
//   auto image = UMBRA_TRY(ImageFile::Open("disk0.img", 4096, 1 << 18));
//   UMBRA_TRY(image->Write(buf, 8 * 4096));
//
// Reads past the end of a short (sparse, truncated) file return zeros. Discard
// punches a hole (falling back to writing zeros where the filesystem cannot).
//
// Thread safety: positional I/O only, so concurrent calls are safe; the
// device serialises them anyway.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace umbra::hw::disk {

class ImageFile {
 public:
  // Opens `path`, creating it with `capacity_blocks` blocks when missing.
  // An existing file keeps its size, which must be a non-zero multiple of
  // `block_size`; a non-zero `capacity_blocks` must then match it. The file
  // is locked (flock) while open: a second ImageFile on it fails kBusy.
  static Result<std::unique_ptr<ImageFile>> Open(const std::string& path, uint32_t block_size,
                                                 uint64_t capacity_blocks);

  const std::string& path() const { return path_; }
  uint64_t capacity_blocks() const { return capacity_blocks_; }
  uint32_t block_size() const { return block_size_; }

  // Whole-range positional I/O at byte `offset`; retries short transfers.
  Result<void> Read(std::span<std::byte> out, uint64_t offset) const;
  Result<void> Write(std::span<const std::byte> data, uint64_t offset) const;
  // Gathers `count` iovecs (count <= IOV_MAX) into consecutive bytes at `offset`.
  Result<void> WriteVector(const iovec* iov, int count, uint64_t offset) const;
  // Makes [offset, offset+length) read as zeros.
  Result<void> Discard(uint64_t offset, uint64_t length) const;
  // fdatasync.
  Result<void> Sync() const;

 private:
  ImageFile(UniqueFd fd, std::string path, uint32_t block_size, uint64_t capacity_blocks)
      : fd_(std::move(fd)), path_(std::move(path)), block_size_(block_size), capacity_blocks_(capacity_blocks) {}

  UniqueFd fd_;  // the open image; the file outlives the device
  std::string path_;
  uint32_t block_size_;
  uint64_t capacity_blocks_;
};

}  // namespace umbra::hw::disk
