// FlatIndex: a hash index of owning handles (shared_ptr, unique_ptr) to
// objects that carry their own key, kept in one flat array.
//
//   struct ByName {
//     using Key = std::string_view;
//     static Key KeyOf(const std::shared_ptr<Device>& d) { return d->name(); }
//     static uint64_t Hash(Key k) { return std::hash<Key>{}(k); }
//   };
//   FlatIndex<std::shared_ptr<Device>, ByName> devices;
//   devices.Insert(dev);                  // the key must not be there yet
//   Device* d = devices.Find("nic0");     // nullptr when absent
//
// Why not std::unordered_map: a lookup there walks from the bucket array to
// the node before the bucket's first node, then to that node, then to the
// object — three dependent cache misses once the model outgrows the cache,
// which made building a 100k-device model grow faster than its size. Here a
// lookup reads one slot (the object's full hash and its handle; neighbours
// share the cache line) and then the object, which the caller reads anyway.
// Open addressing with linear probing, at most 3/4 full; erasing shifts the
// following slots back, so there are no tombstones.
//
// Thread safety: none; the owner guards it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace umbra::model {

template <class Handle, class Traits>
class FlatIndex {
 public:
  using Key = typename Traits::Key;

  // The object with `key`, or nullptr.
  auto* Find(const Key& key) const {
    if (size_ == 0) return static_cast<decltype(slots_[0].handle.get())>(nullptr);
    const size_t i = FindSlot(key, Mix(key));
    return i == kNone ? nullptr : slots_[i].handle.get();
  }

  // Adds `handle`, whose key must not be in the index.
  void Insert(Handle handle) {
    if ((size_ + 1) * 4 > slots_.size() * 3) Grow();
    const uint64_t h = Mix(Traits::KeyOf(handle));
    size_t i = h & mask();
    while (slots_[i].hash != 0) i = (i + 1) & mask();
    slots_[i] = Slot{h, std::move(handle)};
    ++size_;
  }

  // Removes the object with `key` and returns its handle (empty if absent),
  // so that the caller decides when the object dies.
  Handle Erase(const Key& key) {
    if (size_ == 0) return Handle();
    size_t i = FindSlot(key, Mix(key));
    if (i == kNone) return Handle();
    Handle out = std::move(slots_[i].handle);
    // Backward shift: move each following slot of the run into the hole
    // unless its home lies cyclically in (hole, slot].
    for (size_t j = (i + 1) & mask(); slots_[j].hash != 0; j = (j + 1) & mask()) {
      const size_t home = slots_[j].hash & mask();
      const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      slots_[i] = std::move(slots_[j]);
      i = j;
    }
    slots_[i] = Slot{};
    --size_;
    return out;
  }

  // Calls f(handle) for every entry, in no particular order. `f` must not
  // change the index.
  template <class F>
  void ForEach(F&& f) const {
    for (const Slot& s : slots_) {
      if (s.hash != 0) f(s.handle);
    }
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void Clear() {
    slots_.clear();
    size_ = 0;
  }

 private:
  struct Slot {
    uint64_t hash = 0;  // 0: empty; never 0 for an entry (see Mix)
    Handle handle;
  };
  static constexpr size_t kNone = ~size_t{0};

  size_t mask() const { return slots_.size() - 1; }

  // The traits' hash with its top bit set, so that it is never 0.
  static uint64_t Mix(const Key& key) { return Traits::Hash(key) | (uint64_t{1} << 63); }

  size_t FindSlot(const Key& key, uint64_t h) const {
    for (size_t i = h & mask(); slots_[i].hash != 0; i = (i + 1) & mask()) {
      if (slots_[i].hash == h && Traits::KeyOf(slots_[i].handle) == key) return i;
    }
    return kNone;
  }

  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.clear();
    slots_.resize(old.empty() ? 16 : old.size() * 2);
    for (Slot& s : old) {
      if (s.hash == 0) continue;
      size_t i = s.hash & mask();
      while (slots_[i].hash != 0) i = (i + 1) & mask();
      slots_[i] = std::move(s);
    }
  }

  std::vector<Slot> slots_;  // a power of two in size, or empty
  size_t size_ = 0;
};

}  // namespace umbra::model
