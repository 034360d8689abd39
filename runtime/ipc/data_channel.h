// DataChannel: the hot path between the host and one driver — a submit ring, a
// completion ring, two doorbells and a buffer pool, all in one memfd region.
//
//   region:  [submit ring][completion ring][buffer pool .................]
//
// The host creates the region once per device and keeps it for the device's
// lifetime: each new driver process maps the same memfd, so payloads placed in
// the pool survive a driver crash (a shadow can resubmit them without copying).
// DataChannel::Create is the host's end; DataChannel::Attach the driver's.
//
//   Host:   auto ch = UMBRA_TRY(DataChannel::Create("nic0", {.ring_entries = 256}));
//           ch->submit().TryPush(d); if (ch->submit().Publish()) ch->submit_doorbell().Signal();
//   Driver: auto ch = UMBRA_TRY(DataChannel::Attach(layout, region_fd, submit_fd, complete_fd));
//
// Thread safety: one thread drives each ring end at a time (see SpscRing).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "runtime/ipc/descriptor.h"
#include "runtime/ipc/event_fd.h"
#include "runtime/ipc/shared_memory.h"
#include "runtime/ipc/spsc_ring.h"

namespace umbra::ipc {

struct DataChannelOptions {
  uint32_t ring_entries = 256;  // power of two
  uint32_t buffer_size = 2048;  // bytes per pool buffer
  uint32_t buffer_count = 512;  // buffers in the pool
};

// Where everything sits in the region; sent to the driver in Attach.
struct DataLayoutInfo {
  uint64_t region_size = 0;
  uint64_t submit_ring_offset = 0;
  uint64_t complete_ring_offset = 0;
  uint32_t ring_entries = 0;
  uint64_t pool_offset = 0;
  uint64_t pool_size = 0;
  uint32_t buffer_size = 0;

  // Checks a layout received from the other side against a region size.
  Result<void> Validate() const;
};

class DataChannel {
 public:
  static Result<std::unique_ptr<DataChannel>> Create(const std::string& name, const DataChannelOptions& options);
  static Result<std::unique_ptr<DataChannel>> Attach(const DataLayoutInfo& layout, UniqueFd region_fd,
                                                     UniqueFd submit_fd, UniqueFd complete_fd);

  const DataLayoutInfo& layout() const { return layout_; }
  SharedMemory& region() { return *region_; }

  SpscRing<Descriptor>& submit() { return submit_; }
  SpscRing<Descriptor>& complete() { return complete_; }
  const EventFd& submit_doorbell() const { return submit_doorbell_; }
  const EventFd& complete_doorbell() const { return complete_doorbell_; }

  // The pool as bytes, and one buffer by index.
  std::byte* pool() const { return region_->data() + layout_.pool_offset; }
  uint64_t pool_size() const { return layout_.pool_size; }
  uint32_t buffer_count() const { return static_cast<uint32_t>(layout_.pool_size / layout_.buffer_size); }
  uint32_t buffer_offset(uint32_t index) const { return index * layout_.buffer_size; }
  // True when [offset, offset+length) lies inside the pool.
  bool InPool(uint64_t offset, uint64_t length) const {
    return offset <= layout_.pool_size && length <= layout_.pool_size - offset;
  }

  // Host side: zero both rings (no driver attached).
  void ResetRings();
  // Driver side: starts our view of both rings wherever the host's indices
  // are now (at attach, and again at a probe, the host may have reset them).
  void AdoptRingIndices();

 private:
  DataChannel(DataLayoutInfo layout, std::unique_ptr<SharedMemory> region, EventFd submit, EventFd complete);

  DataLayoutInfo layout_;
  std::unique_ptr<SharedMemory> region_;  // rings and pool live here
  SpscRing<Descriptor> submit_;
  SpscRing<Descriptor> complete_;
  EventFd submit_doorbell_;    // host → driver
  EventFd complete_doorbell_;  // driver → host
};

}  // namespace umbra::ipc
