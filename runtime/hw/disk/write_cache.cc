#include "runtime/hw/disk/write_cache.h"

#include <limits.h>

#include <algorithm>
#include <bit>

namespace umbra::hw::disk {
namespace {

constexpr int kMaxIov = IOV_MAX < 1024 ? IOV_MAX : 1024;

uint64_t Hash(uint64_t lba) { return lba * 0x9E3779B97F4A7C15ull; }

}  // namespace

Result<std::unique_ptr<WriteCache>> WriteCache::Create(uint32_t block_size, uint64_t capacity_blocks) {
  if (block_size == 0 || capacity_blocks == 0 || capacity_blocks > (uint64_t{1} << 30)) {
    return Fail(Errc::kInvalidArgument,
                "write cache of " + std::to_string(capacity_blocks) + " blocks is not supported");
  }
  const uint64_t table_size = std::bit_ceil(capacity_blocks * 2);
  return std::unique_ptr<WriteCache>(new WriteCache(block_size, capacity_blocks, table_size));
}

WriteCache::WriteCache(uint32_t block_size, uint64_t capacity, uint64_t table_size)
    : block_size_(block_size), capacity_(capacity), table_mask_(table_size - 1),
      data_(std::make_unique_for_overwrite<std::byte[]>(capacity * block_size)), slot_lba_(capacity),
      slot_entry_(capacity), order_(capacity), iov_(kMaxIov), table_(table_size, Entry{kEmpty, 0}) {}

size_t WriteCache::Home(uint64_t lba) const { return Hash(lba) >> 20 & table_mask_; }

size_t WriteCache::Probe(uint64_t lba) const {
  size_t i = Home(lba);
  while (table_[i].lba != kEmpty && table_[i].lba != lba) i = (i + 1) & table_mask_;
  return i;
}

std::byte* WriteCache::Find(uint64_t lba) const {
  if (used_ == 0) return nullptr;
  const Entry& e = table_[Probe(lba)];
  return e.lba == lba ? SlotData(e.slot) : nullptr;
}

std::byte* WriteCache::Put(uint64_t lba) {
  const size_t i = Probe(lba);
  if (table_[i].lba == lba) return SlotData(table_[i].slot);
  const uint32_t slot = Nth(used_++);
  table_[i] = Entry{lba, slot};
  slot_lba_[slot] = lba;
  slot_entry_[slot] = static_cast<uint32_t>(i);
  return SlotData(slot);
}

Result<uint64_t> WriteCache::WriteBackOldest(const ImageFile& image, uint64_t count) {
  count = std::min(count, used_);
  if (count == 0) return 0;
  for (uint64_t i = 0; i < count; ++i) order_[i] = Nth(i);
  std::sort(order_.begin(), order_.begin() + static_cast<ptrdiff_t>(count),
            [this](uint32_t a, uint32_t b) { return slot_lba_[a] < slot_lba_[b]; });
  uint64_t i = 0;
  while (i < count) {
    const uint64_t first = slot_lba_[order_[i]];
    int n = 0;
    while (i < count && n < kMaxIov && slot_lba_[order_[i]] == first + static_cast<uint64_t>(n)) {
      iov_[n++] = iovec{SlotData(order_[i]), block_size_};
      ++i;
    }
    UMBRA_TRY(image.WriteVector(iov_.data(), n, first * block_size_));
  }
  if (count == used_) {
    Drop();
    return count;
  }
  for (uint64_t k = 0; k < count; ++k) Erase(slot_entry_[Nth(k)]);
  head_ = Nth(count);
  used_ -= count;
  return count;
}

// Backward-shift deletion: later entries of the same probe run move up into
// the hole, so that Probe never meets a gap before the key it looks for.
void WriteCache::Erase(size_t hole) {
  size_t j = hole;
  for (;;) {
    table_[hole].lba = kEmpty;
    for (;;) {
      j = (j + 1) & table_mask_;
      if (table_[j].lba == kEmpty) return;
      const size_t home = Home(table_[j].lba);
      // An entry whose home lies cyclically in (hole, j] must stay.
      const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
      if (!stays) break;
    }
    table_[hole] = table_[j];
    slot_entry_[table_[hole].slot] = static_cast<uint32_t>(hole);
    hole = j;
  }
}

void WriteCache::Drop() {
  for (uint64_t i = 0; i < used_; ++i) table_[slot_entry_[Nth(i)]].lba = kEmpty;
  head_ = used_ = 0;
}

}  // namespace umbra::hw::disk
