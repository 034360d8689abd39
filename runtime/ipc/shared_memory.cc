#include "runtime/ipc/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace umbra::ipc {
namespace {

size_t RoundUpToPage(size_t size) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (size + page - 1) / page * page;
}

}  // namespace

Result<std::unique_ptr<SharedMemory>> SharedMemory::Create(const std::string& name, size_t size) {
  if (size == 0) return Fail(Errc::kInvalidArgument, "shared memory '" + name + "' of size 0");
  size = RoundUpToPage(size);
  UniqueFd fd(memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return FailErrno("memfd_create " + name);
  if (ftruncate(fd.get(), static_cast<off_t>(size)) != 0) return FailErrno("ftruncate " + name);
  // The driver may not grow or shrink the region under us (a shrink would
  // turn our own accesses into SIGBUS).
  if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return FailErrno("seal " + name);
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return FailErrno("mmap " + name);
  return std::unique_ptr<SharedMemory>(new SharedMemory(std::move(fd), static_cast<std::byte*>(p), size));
}

Result<std::unique_ptr<SharedMemory>> SharedMemory::Map(UniqueFd fd, size_t size) {
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return FailErrno("fstat shared memory");
  if (static_cast<uint64_t>(st.st_size) < size) {
    return Fail(Errc::kProtocol,
                "shared memory is " + std::to_string(st.st_size) + " bytes, expected at least " + std::to_string(size));
  }
  size = RoundUpToPage(size);
  if (static_cast<uint64_t>(st.st_size) < size) size = static_cast<size_t>(st.st_size);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return FailErrno("mmap shared memory");
  return std::unique_ptr<SharedMemory>(new SharedMemory(std::move(fd), static_cast<std::byte*>(p), size));
}

SharedMemory::~SharedMemory() {
  if (data_ != nullptr) munmap(data_, size_);
}

}  // namespace umbra::ipc
