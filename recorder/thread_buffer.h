// ThreadBuffer: one producer thread's lock-free queue of fixed-size records,
// drained by the Recorder's writer thread. Included by recorder.h only so the
// hot path can be inlined; not for use elsewhere.
//
// Thread safety: single producer (the owning thread) and single consumer (the
// writer thread). The producer never blocks: when the buffer is full the
// record is counted in `lost` and dropped.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "recorder/event.h"

namespace umbra::recorder::detail {

// Which EventBody alternative a Record holds; only the numeric events travel
// through thread buffers (events with strings go through the Recorder's
// locked slow queue).
enum class RecordKind : uint8_t {
  kRequestSubmitted,
  kRequestCompleted,
  kDriverSpawned,
  kDriverReady,
  kDriverExited,
  kDetected,
  kPhaseBegin,
  kPhaseEnd,
  kDeviceFailed,
  kRequestsDisposed,
  kLinkChanged,
};

// 32 bytes: what the hot path copies into the buffer.
struct Record {
  int64_t time_ns;
  DeviceId device;
  RecordKind kind;
  uint8_t code;   // op / reason / phase / disposition / link event / exit kind
  uint8_t code2;  // outcome
  uint8_t unused;
  uint64_t a;  // size / pid / exit value / detail / count / supplier
  int64_t b;   // latency
};
static_assert(sizeof(Record) == 32);

// Decodes a record into the event it stands for.
Event ToEvent(const Record& r);

class ThreadBuffer {
 public:
  explicit ThreadBuffer(uint32_t capacity_pow2)
      : records_(std::make_unique<Record[]>(capacity_pow2)), mask_(capacity_pow2 - 1) {}

  // Producer side. Returns false (and counts the record lost) when full.
  bool Push(const Record& r) {
    uint64_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - cached_head_ > mask_) {
      cached_head_ = head_.load(std::memory_order_acquire);
      if (tail - cached_head_ > mask_) {
        lost_.store(lost_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        return false;
      }
    }
    records_[tail & mask_] = r;
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  // Producer side: true when this event of sampled stream `stream` (0:
  // submissions, 1: completions) should be kept under 1-in-`rate` sampling.
  // Each stream has its own tick so alternating kinds are not biased.
  bool Sample(int stream, uint32_t rate) {
    if (++sample_tick_[stream] < rate) return false;
    sample_tick_[stream] = 0;
    return true;
  }

  // Consumer side: calls fn(record) for every record published so far.
  template <class Fn>
  uint64_t Drain(Fn&& fn) {
    uint64_t head = head_.load(std::memory_order_relaxed);
    uint64_t tail = tail_.load(std::memory_order_acquire);
    for (uint64_t i = head; i != tail; ++i) fn(records_[i & mask_]);
    head_.store(tail, std::memory_order_release);
    return tail - head;
  }

  uint64_t lost() const { return lost_.load(std::memory_order_relaxed); }

 private:
  // Producer-owned line.
  alignas(64) std::atomic<uint64_t> tail_{0};
  uint64_t cached_head_ = 0;
  uint32_t sample_tick_[2] = {0, 0};
  std::atomic<uint64_t> lost_{0};
  // Consumer-owned line.
  alignas(64) std::atomic<uint64_t> head_{0};
  // The ring storage; lives as long as the buffer.
  alignas(64) std::unique_ptr<Record[]> records_;
  uint64_t mask_;
};

// The calling thread's buffer for the recorder it used last.
struct ThreadSlot {
  uint64_t recorder_id = 0;
  ThreadBuffer* buffer = nullptr;
};
inline thread_local ThreadSlot tls_slot;

}  // namespace umbra::recorder::detail
