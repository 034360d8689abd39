// SharedMemory: a memfd mapped into this process, shareable with a driver by fd.
//
// The host creates every region a driver uses (rings, buffer pool, device
// registers, DMA) and keeps it across driver restarts, so that what the
// emulated hardware holds survives a crash the way a real device's memory
// does. The driver maps the same fd; the host treats every byte of it as
// written by a hostile party at any moment.
//
//   auto mem = UMBRA_TRY(SharedMemory::Create("nic0-data", 1 << 20));
//   std::span<std::byte> bytes = mem->bytes();
//   SendFd(mem->fd());
//
// Thread safety: the object is immutable after Create; the bytes are shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace umbra::ipc {

class SharedMemory {
 public:
  // Creates a sealed-size memfd of `size` bytes (rounded up to pages) and maps it.
  static Result<std::unique_ptr<SharedMemory>> Create(const std::string& name, size_t size);
  // Maps a memfd received from the other side; checks its size is at least `size`.
  static Result<std::unique_ptr<SharedMemory>> Map(UniqueFd fd, size_t size);

  ~SharedMemory();
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;

  int fd() const { return fd_.get(); }
  size_t size() const { return size_; }
  std::byte* data() const { return data_; }
  std::span<std::byte> bytes() const { return {data_, size_}; }

  // Typed pointer at `offset`; the caller guarantees the range is in bounds.
  template <class T>
  T* at(size_t offset) const {
    return reinterpret_cast<T*>(data_ + offset);
  }

 private:
  SharedMemory(UniqueFd fd, std::byte* data, size_t size) : fd_(std::move(fd)), data_(data), size_(size) {}

  UniqueFd fd_;      // kept so the region can be handed to each new driver
  std::byte* data_;  // our mapping; unmapped in the destructor
  size_t size_;
};

}  // namespace umbra::ipc
