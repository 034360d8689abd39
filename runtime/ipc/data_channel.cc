#include "runtime/ipc/data_channel.h"

namespace umbra::ipc {
namespace {

constexpr uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

DataLayoutInfo ComputeLayout(const DataChannelOptions& o) {
  DataLayoutInfo l;
  l.ring_entries = o.ring_entries;
  l.submit_ring_offset = 0;
  l.complete_ring_offset = AlignUp(SpscRing<Descriptor>::BytesFor(o.ring_entries), 64);
  l.pool_offset = AlignUp(l.complete_ring_offset + SpscRing<Descriptor>::BytesFor(o.ring_entries), 4096);
  l.buffer_size = o.buffer_size;
  l.pool_size = uint64_t{o.buffer_size} * o.buffer_count;
  l.region_size = AlignUp(l.pool_offset + l.pool_size, 4096);
  return l;
}

}  // namespace

Result<void> DataLayoutInfo::Validate() const {
  if (!SpscRing<Descriptor>::ValidEntries(ring_entries)) {
    return Fail(Errc::kProtocol,
                "ring entries " + std::to_string(ring_entries) + " is not a power of two in [2, 2^20]");
  }
  const uint64_t ring_bytes = SpscRing<Descriptor>::BytesFor(ring_entries);
  auto inside = [&](uint64_t off, uint64_t len) { return off <= region_size && len <= region_size - off; };
  if (submit_ring_offset % 64 != 0 || complete_ring_offset % 64 != 0 || !inside(submit_ring_offset, ring_bytes) ||
      !inside(complete_ring_offset, ring_bytes)) {
    return Fail(Errc::kProtocol, "ring outside the data region or misaligned");
  }
  if (buffer_size == 0 || !inside(pool_offset, pool_size) || pool_size % buffer_size != 0) {
    return Fail(Errc::kProtocol, "buffer pool outside the data region");
  }
  return {};
}

DataChannel::DataChannel(DataLayoutInfo layout, std::unique_ptr<SharedMemory> region, EventFd submit, EventFd complete)
    : layout_(layout), region_(std::move(region)),
      submit_(region_->data() + layout.submit_ring_offset, layout.ring_entries),
      complete_(region_->data() + layout.complete_ring_offset, layout.ring_entries),
      submit_doorbell_(std::move(submit)), complete_doorbell_(std::move(complete)) {}

Result<std::unique_ptr<DataChannel>> DataChannel::Create(const std::string& name, const DataChannelOptions& options) {
  if (!SpscRing<Descriptor>::ValidEntries(options.ring_entries)) {
    return Fail(Errc::kInvalidArgument, "ring_entries must be a power of two in [2, 2^20]");
  }
  if (options.buffer_size == 0 || options.buffer_count == 0) {
    return Fail(Errc::kInvalidArgument, "buffer pool must not be empty");
  }
  DataLayoutInfo layout = ComputeLayout(options);
  auto region = UMBRA_TRY(SharedMemory::Create(name + "-data", layout.region_size));
  layout.region_size = region->size();
  EventFd submit = UMBRA_TRY(EventFd::Create());
  EventFd complete = UMBRA_TRY(EventFd::Create());
  std::unique_ptr<DataChannel> ch(new DataChannel(layout, std::move(region), std::move(submit), std::move(complete)));
  ch->ResetRings();
  return ch;
}

Result<std::unique_ptr<DataChannel>> DataChannel::Attach(const DataLayoutInfo& layout, UniqueFd region_fd,
                                                         UniqueFd submit_fd, UniqueFd complete_fd) {
  UMBRA_TRY(layout.Validate());
  auto region = UMBRA_TRY(SharedMemory::Map(std::move(region_fd), layout.region_size));
  std::unique_ptr<DataChannel> ch(
      new DataChannel(layout, std::move(region), EventFd(std::move(submit_fd)), EventFd(std::move(complete_fd))));
  ch->AdoptRingIndices();
  return ch;
}

void DataChannel::AdoptRingIndices() {
  submit_.AdoptIndices(region_->at<RingHeader>(layout_.submit_ring_offset)->tail.load(std::memory_order_acquire));
  complete_.AdoptIndices(region_->at<RingHeader>(layout_.complete_ring_offset)->head.load(std::memory_order_acquire));
}

void DataChannel::ResetRings() {
  submit_.Reset();
  complete_.Reset();
  submit_doorbell_.Drain();
  complete_doorbell_.Drain();
}

}  // namespace umbra::ipc
