// SlotTable<T>: a fixed-capacity table with O(1) insert and remove, keyed by
// a cookie that encodes the slot and a generation (runtime::RequestCookie, so
// a stale cookie never matches a reused slot). The shadows' in-flight tables
// and object trackers.
//
//   SlotTable<TxEntry> table(256);
//   std::optional<uint64_t> cookie = table.Insert(entry);
//   if (TxEntry* e = table.Find(cookie)) { ...; table.Erase(cookie); }
//
// No allocation after construction. Thread safety: none.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "runtime/supervisor/cookie.h"

namespace umbra::shadows {

template <class T>
class SlotTable {
 public:
  explicit SlotTable(uint32_t capacity) : slots_(capacity) {
    free_.reserve(capacity);
    for (uint32_t i = capacity; i > 0; --i) free_.push_back(i - 1);
  }

  std::optional<uint64_t> Insert(T value) {
    if (free_.empty()) return std::nullopt;
    const uint32_t i = free_.back();
    free_.pop_back();
    Slot& s = slots_[i];
    s.value = std::move(value);
    s.used = true;
    s.generation = runtime::NextGeneration(s.generation);
    ++size_;
    return runtime::RequestCookie{.index = i, .tag = s.generation}.Encode();
  }

  T* Find(uint64_t cookie) {
    const runtime::RequestCookie c = runtime::RequestCookie::Decode(cookie);
    if (c.index >= slots_.size()) return nullptr;
    Slot& s = slots_[c.index];
    if (!s.used || s.generation != c.tag) return nullptr;
    return &s.value;
  }

  bool Erase(uint64_t cookie) {
    if (Find(cookie) == nullptr) return false;
    const uint32_t i = runtime::RequestCookie::Decode(cookie).index;
    slots_[i].used = false;
    free_.push_back(i);
    --size_;
    return true;
  }

  // Visits every entry as (cookie, value&).
  template <class F>
  void ForEach(F&& f) {
    for (uint32_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].used) f(runtime::RequestCookie{.index = i, .tag = slots_[i].generation}.Encode(), slots_[i].value);
    }
  }

  uint32_t size() const { return size_; }
  uint32_t capacity() const { return static_cast<uint32_t>(slots_.size()); }
  bool full() const { return free_.empty(); }

 private:
  struct Slot {
    T value{};
    uint32_t generation = 0;
    bool used = false;
  };
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  uint32_t size_ = 0;
};

}  // namespace umbra::shadows
