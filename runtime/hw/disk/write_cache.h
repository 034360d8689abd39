// WriteCache: the disk's volatile write cache, host memory that a power cut
// (Drop) loses.
//
// It holds only dirty blocks, oldest first: a write puts blocks in, a flush
// (WriteBack) writes them all to the image in LBA order and empties it, and
// WriteBackOldest destages the oldest few, as a disk does in the background
// to keep room free. All memory is allocated by Create; Put, Find and the
// write-backs allocate nothing.
//
//   auto cache = UMBRA_TRY(WriteCache::Create(4096, 4096));
//   if (!cache->HasRoom(n)) UMBRA_TRY(cache->WriteBack(*image));
//   std::memcpy(cache->Put(lba), data, 4096);
//   if (cache->dirty_blocks() > 2048) UMBRA_TRY(cache->WriteBackOldest(*image, 32));
//
// Thread safety: none; the device guards it with its state mutex.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/result.h"
#include "runtime/hw/disk/image_file.h"

namespace umbra::hw::disk {

class WriteCache {
 public:
  // A cache of `capacity_blocks` blocks of `block_size` bytes (capacity >= 1).
  static Result<std::unique_ptr<WriteCache>> Create(uint32_t block_size, uint64_t capacity_blocks);

  uint64_t capacity_blocks() const { return capacity_; }
  uint64_t dirty_blocks() const { return used_; }
  bool empty() const { return used_ == 0; }
  bool HasRoom(uint64_t blocks) const { return used_ + blocks <= capacity_; }

  // The cached copy of `lba`, or nullptr when it is not cached.
  std::byte* Find(uint64_t lba) const;
  // The slot for `lba` (existing or new) for the caller to fill; requires
  // HasRoom(1) when `lba` is not cached yet.
  std::byte* Put(uint64_t lba);
  // Calls f(lba, std::byte* data) for every cached block in [lba, lba+count).
  template <class F>
  void ForEachInRange(uint64_t lba, uint64_t count, F&& f) const;

  // Writes every cached block to `image` (sorted, coalesced into vectored
  // writes), then empties the cache. On an image error the cache is kept.
  // Returns the number of blocks written.
  Result<uint64_t> WriteBack(const ImageFile& image) { return WriteBackOldest(image, used_); }
  // The same for the `count` blocks that have been dirty longest (all of
  // them when fewer); the newer ones stay cached.
  Result<uint64_t> WriteBackOldest(const ImageFile& image, uint64_t count);
  // Forgets every cached block (power loss).
  void Drop();

 private:
  struct Entry {
    uint64_t lba;
    uint32_t slot;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  WriteCache(uint32_t block_size, uint64_t capacity, uint64_t table_size);
  size_t Home(uint64_t lba) const;
  size_t Probe(uint64_t lba) const;
  void Erase(size_t entry);
  // The slot holding the i-th oldest dirty block (i < used_).
  uint32_t Nth(uint64_t i) const {
    const uint64_t s = head_ + i;
    return static_cast<uint32_t>(s < capacity_ ? s : s - capacity_);
  }
  std::byte* SlotData(uint32_t slot) const { return data_.get() + uint64_t{slot} * block_size_; }

  uint32_t block_size_;
  uint64_t capacity_;
  // Slots form a ring in the order their blocks became dirty: Nth(0) (at
  // head_) is the oldest, Nth(used_ - 1) the newest.
  uint64_t head_ = 0;
  uint64_t used_ = 0;
  uint64_t table_mask_;
  std::unique_ptr<std::byte[]> data_;  // capacity_ blocks of cached data
  std::vector<uint64_t> slot_lba_;     // per slot: its LBA
  std::vector<uint32_t> slot_entry_;   // per slot: its index in table_
  std::vector<uint32_t> order_;        // scratch for the write-backs' sort
  std::vector<iovec> iov_;             // scratch for the write-backs' vectored writes
  std::vector<Entry> table_;           // open addressing, linear probing, lba → slot
};

template <class F>
void WriteCache::ForEachInRange(uint64_t lba, uint64_t count, F&& f) const {
  if (used_ == 0) return;
  if (count < used_) {
    for (uint64_t i = 0; i < count; ++i) {
      if (std::byte* data = Find(lba + i)) f(lba + i, data);
    }
    return;
  }
  for (uint64_t i = 0; i < used_; ++i) {
    const uint32_t slot = Nth(i);
    const uint64_t at = slot_lba_[slot];
    if (at >= lba && at - lba < count) f(at, SlotData(slot));
  }
}

}  // namespace umbra::hw::disk
