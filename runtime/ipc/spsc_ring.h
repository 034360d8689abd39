// SpscRing<T>: a single-producer single-consumer ring of fixed-size records in
// shared memory, with virtio-style event suppression.
//
// Layout: a RingHeader (producer and consumer indices on separate cache lines,
// plus the consumer's "asleep" flag) followed by `entries` slots. Indices run
// free (wrap at 2^32); a slot is `index & (entries - 1)`.
//
// One side of every Umbra ring is an untrusted driver, which can write anything
// into the header at any moment. So each side keeps its own index privately and
// only publishes it; the peer's index is read once, checked (it may never claim
// more than `entries` records in flight, nor go backwards), and a bad value
// poisons the ring: every further operation is a no-op and poisoned() is true.
// The owner treats that as a protocol violation.
//
// The consumer also publishes the CPU it last ran on (NoteCpu): a producer
// that shares that CPU knows that spinning there only keeps its peer off it.
//
// Event suppression: a consumer that finds the ring empty spins for a bounded
// time, then calls PrepareToSleep() (announce, re-check) and blocks on its
// doorbell. A producer calls Publish(), which returns true only when the
// consumer announced it was going to sleep: only then is the doorbell rung. A
// busy ring therefore costs no system call.
//
//   // producer                           // consumer
//   ring.TryPush(d);                        while (ring.TryPop(d)) Handle(d);
//   if (ring.Publish()) doorbell.Signal();  ring.Release();
//
// Thread safety: one producer thread and one consumer thread (possibly in
// different processes); each end is used by one thread at a time.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

namespace umbra::ipc {

struct RingHeader {
  alignas(64) std::atomic<uint32_t> head;             // written by the producer
  alignas(64) std::atomic<uint32_t> tail;             // written by the consumer
  alignas(64) std::atomic<uint32_t> consumer_asleep;  // 1: ring the doorbell
  std::atomic<int32_t> consumer_cpu;                  // the CPU the consumer last ran on (-1: not known); a hint
};
static_assert(sizeof(RingHeader) == 192);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

enum class RingRole { kProducer, kConsumer };

template <class T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  // Bytes a ring of `entries` records occupies (header + slots).
  static constexpr size_t BytesFor(uint32_t entries) { return sizeof(RingHeader) + size_t{entries} * sizeof(T); }
  static constexpr bool ValidEntries(uint32_t entries) {
    return entries >= 2 && (entries & (entries - 1)) == 0 && entries <= (1u << 20);
  }

  SpscRing() = default;
  // `memory` must hold BytesFor(entries) bytes, 64-byte aligned. The creating
  // side calls Reset() once before the peer starts.
  SpscRing(std::byte* memory, uint32_t entries)
      : header_(reinterpret_cast<RingHeader*>(memory)), slots_(reinterpret_cast<T*>(memory + sizeof(RingHeader))),
        mask_(entries - 1) {}

  // Zeroes the shared header and our private indices (both ends idle).
  void Reset() {
    header_->head.store(0, std::memory_order_relaxed);
    header_->tail.store(0, std::memory_order_relaxed);
    header_->consumer_cpu.store(-1, std::memory_order_relaxed);
    header_->consumer_asleep.store(0, std::memory_order_release);
    AdoptIndices(0);
  }
  // Restarts our private view at `index` (after the peer was replaced).
  void AdoptIndices(uint32_t index) {
    local_head_ = local_tail_ = index;
    peer_index_ = index;
    poisoned_ = false;
    noted_cpu_ = -1;  // the next NoteCpu stores again
  }

  uint32_t entries() const { return mask_ + 1; }
  bool poisoned() const { return poisoned_; }

  // ---- producer ----

  // Free slots, refreshing the consumer's index only when the cached one says full.
  uint32_t FreeSlots() {
    uint32_t used = local_head_ - peer_index_;
    if (used == entries()) RefreshTail();
    return poisoned_ ? 0 : entries() - (local_head_ - peer_index_);
  }
  // Writes one record; not visible to the consumer until Publish().
  bool TryPush(const T& record) {
    if (poisoned_) return false;
    if (local_head_ - peer_index_ == entries()) {
      RefreshTail();
      if (poisoned_ || local_head_ - peer_index_ == entries()) return false;
    }
    std::memcpy(&slots_[local_head_ & mask_], &record, sizeof(T));
    ++local_head_;
    return true;
  }
  // Makes pushed records visible. True when the consumer is asleep and the
  // doorbell must be rung (the flag is consumed).
  // The store of head and the load of the flag are both seq_cst (as are the
  // consumer's store of the flag and load of head): in the single total order
  // one side sees the other, so a record is never left behind a sleeping
  // consumer. (Sequentially consistent operations rather than fences, which
  // ThreadSanitizer does not model.)
  bool Publish() {
    header_->head.store(local_head_, std::memory_order_seq_cst);
    if (header_->consumer_asleep.load(std::memory_order_seq_cst) == 0) return false;
    return header_->consumer_asleep.exchange(0, std::memory_order_acq_rel) != 0;
  }
  // Records pushed and not yet consumed, as far as we know.
  uint32_t InFlight() const { return local_head_ - peer_index_; }

  // ---- consumer ----

  // Records ready to pop (validated); refreshes the producer's index when empty.
  uint32_t Available() {
    if (local_tail_ == peer_index_) RefreshHead();
    return poisoned_ ? 0 : peer_index_ - local_tail_;
  }
  bool TryPop(T& out) {
    if (Available() == 0) return false;
    std::memcpy(&out, &slots_[local_tail_ & mask_], sizeof(T));
    ++local_tail_;
    return true;
  }
  // Gives consumed slots back to the producer.
  void Release() { header_->tail.store(local_tail_, std::memory_order_release); }

  // Announces that the consumer is about to block. Returns false (and takes
  // the announcement back) when records arrived meanwhile: do not block then.
  bool PrepareToSleep() {
    header_->consumer_asleep.store(1, std::memory_order_seq_cst);
    if (Available() != 0 || poisoned_) {
      header_->consumer_asleep.store(0, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void CancelSleep() { header_->consumer_asleep.store(0, std::memory_order_relaxed); }
  // Publishes the CPU the consumer runs on (stored only when it changes).
  // The producer may use it to tell whether the two share a CPU; a hint
  // only: the peer may write anything there, so it steers waiting, never
  // correctness.
  void NoteCpu(int cpu) {
    if (cpu != noted_cpu_) header_->consumer_cpu.store(noted_cpu_ = cpu, std::memory_order_relaxed);
  }
  int consumer_cpu() const { return header_->consumer_cpu.load(std::memory_order_relaxed); }

 private:
  // The consumer's published tail must lie in [old tail, our head].
  void RefreshTail() {
    uint32_t tail = header_->tail.load(std::memory_order_acquire);
    if (tail - peer_index_ > local_head_ - peer_index_) {
      poisoned_ = true;
      return;
    }
    peer_index_ = tail;
  }
  // The producer's published head may be at most `entries` ahead of our tail
  // and never behind it.
  void RefreshHead() {
    uint32_t head = header_->head.load(std::memory_order_seq_cst);
    if (head - local_tail_ > entries()) {
      poisoned_ = true;
      return;
    }
    peer_index_ = head;
  }

  RingHeader* header_ = nullptr;  // in shared memory owned by the region
  T* slots_ = nullptr;
  uint32_t mask_ = 0;
  // Private copies: never read back from shared memory.
  uint32_t local_head_ = 0;  // producer: next slot to fill
  uint32_t local_tail_ = 0;  // consumer: next slot to read
  uint32_t peer_index_ = 0;  // the last validated index of the other side
  bool poisoned_ = false;
  int noted_cpu_ = -1;  // consumer: what NoteCpu last stored
};

}  // namespace umbra::ipc
