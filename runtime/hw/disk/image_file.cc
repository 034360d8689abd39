#include "runtime/hw/disk/image_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace umbra::hw::disk {

Result<std::unique_ptr<ImageFile>> ImageFile::Open(const std::string& path, uint32_t block_size,
                                                   uint64_t capacity_blocks) {
  if (block_size != 512 && block_size != 4096) {
    return Fail(Errc::kInvalidArgument, "disk block size " + std::to_string(block_size) + " is not 512 or 4096");
  }
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  const bool created = !fd && errno == ENOENT;
  if (created) {
    if (capacity_blocks == 0) {
      return Fail(Errc::kNotFound, "disk image " + path + " does not exist and no capacity was given");
    }
    fd.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  }
  if (!fd) return FailErrno("open disk image " + path);
  // One disk per image: a second device on the same file would make each
  // one's cache and flushes meaningless to the other.
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return Fail(Errc::kBusy, "disk image " + path + " is in use by another disk");
    return FailErrno("lock disk image " + path);
  }
  if (created) {
    if (ftruncate(fd.get(), static_cast<off_t>(capacity_blocks * block_size)) != 0) {
      return FailErrno("size disk image " + path);
    }
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return FailErrno("stat disk image " + path);
  if (!S_ISREG(st.st_mode)) return Fail(Errc::kInvalidArgument, "disk image " + path + " is not a regular file");
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size == 0 || size % block_size != 0) {
    return Fail(Errc::kInvalidArgument, "disk image " + path + " is " + std::to_string(size) +
                                            " bytes, not a non-zero multiple of " + std::to_string(block_size));
  }
  if (capacity_blocks != 0 && capacity_blocks != size / block_size) {
    return Fail(Errc::kInvalidArgument, "disk image " + path + " has " + std::to_string(size / block_size) +
                                            " blocks, expected " + std::to_string(capacity_blocks));
  }
  return std::unique_ptr<ImageFile>(new ImageFile(std::move(fd), path, block_size, size / block_size));
}

Result<void> ImageFile::Read(std::span<std::byte> out, uint64_t offset) const {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd_.get(), out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FailErrno("read disk image " + path_);
    if (n == 0) {  // past the end of a truncated file: zeros
      std::memset(out.data() + done, 0, out.size() - done);
      break;
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Result<void> ImageFile::Write(std::span<const std::byte> data, uint64_t offset) const {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd_.get(), data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return FailErrno("write disk image " + path_, n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  return {};
}

Result<void> ImageFile::WriteVector(const iovec* iov, int count, uint64_t offset) const {
  size_t total = 0;
  for (int i = 0; i < count; ++i) total += iov[i].iov_len;
  ssize_t n;
  do {
    n = ::pwritev(fd_.get(), iov, count, static_cast<off_t>(offset));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return FailErrno("write disk image " + path_);
  if (static_cast<size_t>(n) == total) return {};
  // A short vectored write: finish the rest one piece at a time.
  size_t skip = static_cast<size_t>(n);
  uint64_t at = offset;
  for (int i = 0; i < count; ++i) {
    const size_t len = iov[i].iov_len;
    if (skip >= len) {
      skip -= len;
      at += len;
      continue;
    }
    auto* base = static_cast<const std::byte*>(iov[i].iov_base);
    UMBRA_TRY(Write({base + skip, len - skip}, at + skip));
    at += len;
    skip = 0;
  }
  return {};
}

Result<void> ImageFile::Discard(uint64_t offset, uint64_t length) const {
  if (fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                static_cast<off_t>(length)) == 0) {
    return {};
  }
  if (errno != EOPNOTSUPP && errno != ENOSYS) return FailErrno("discard on disk image " + path_);
  // The filesystem cannot punch holes: write zeros (rare; allocation is fine here).
  std::vector<std::byte> zeros(std::min<uint64_t>(length, 1 << 20));
  for (uint64_t done = 0; done < length;) {
    const uint64_t n = std::min<uint64_t>(zeros.size(), length - done);
    UMBRA_TRY(Write({zeros.data(), n}, offset + done));
    done += n;
  }
  return {};
}

Result<void> ImageFile::Sync() const {
  if (fdatasync(fd_.get()) != 0) return FailErrno("fdatasync disk image " + path_);
  return {};
}

}  // namespace umbra::hw::disk
