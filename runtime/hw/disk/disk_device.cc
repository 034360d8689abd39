#include "runtime/hw/disk/disk_device.h"

#include <poll.h>
#include <sched.h>
#include <sys/sysinfo.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "base/clock.h"
#include "base/spin.h"
#include "base/tsan.h"
#include "runtime/hw/disk/image_file.h"
#include "runtime/hw/disk/write_cache.h"

namespace umbra::hw::disk {

// Single writer (the hardware thread, or a caller holding mu_); readers load
// relaxed. Add() is a load and a store, not a locked RMW: cheap on the data path.
struct DiskDevice::Counters {
  std::atomic<uint64_t> reads{0}, writes{0}, fua_writes{0}, flushes{0}, discards{0}, identifies{0}, bytes_read{0},
      bytes_written{0}, refused{0}, no_device{0}, io_errors{0}, writeback_blocks{0}, evictions{0},
      background_writebacks{0}, syncs{0}, interrupts{0}, batches{0};

  static void Add(std::atomic<uint64_t>& counter, uint64_t n = 1) {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

namespace {

Result<void> CheckOptions(const DiskOptions& o) {
  if (o.image_path.empty()) return Fail(Errc::kInvalidArgument, "disk " + o.name + ": no image path");
  if (o.block_size != 512 && o.block_size != 4096) {
    return Fail(Errc::kInvalidArgument, "disk " + o.name + ": block size must be 512 or 4096");
  }
  if (o.max_queue_depth < kMinQueueDepth || o.max_queue_depth > kMaxQueueDepth ||
      !std::has_single_bit(o.max_queue_depth)) {
    return Fail(Errc::kInvalidArgument, "disk " + o.name + ": max queue depth must be a power of two in [" +
                                            std::to_string(kMinQueueDepth) + ", " + std::to_string(kMaxQueueDepth) +
                                            "]");
  }
  if (o.max_transfer_bytes < o.block_size || o.max_transfer_bytes % o.block_size != 0) {
    return Fail(Errc::kInvalidArgument, "disk " + o.name + ": max transfer must be whole blocks");
  }
  if (o.tag_limit == 0 || o.tag_limit > 65536) {
    return Fail(Errc::kInvalidArgument, "disk " + o.name + ": tag limit must be in [1, 65536]");
  }
  if (o.dma_size == 0) return Fail(Errc::kInvalidArgument, "disk " + o.name + ": empty DMA pool");
  if (o.cache_bytes % o.block_size != 0) {
    return Fail(Errc::kInvalidArgument, "disk " + o.name + ": cache size must be whole blocks");
  }
  if (o.writeback_start_percent > 100) {
    return Fail(Errc::kInvalidArgument, "disk " + o.name + ": write-back start must be a percentage (0..100)");
  }
  if (o.hw_cpu < -1 || o.hw_cpu >= std::min(get_nprocs_conf(), CPU_SETSIZE)) {
    return Fail(Errc::kInvalidArgument,
                "disk " + o.name + ": there is no CPU " + std::to_string(o.hw_cpu) + " to run the hardware thread on");
  }
  return {};
}

// True when [offset, offset+length) lies inside [0, size) (overflow-safe).
bool InRange(uint64_t offset, uint64_t length, uint64_t size) { return offset <= size && length <= size - offset; }

void CopyName(char* out, size_t size, std::string_view name) {
  std::memset(out, 0, size);
  std::memcpy(out, name.data(), std::min(size - 1, name.size()));
}

}  // namespace

Result<std::unique_ptr<DiskDevice>> DiskDevice::Create(DiskOptions options) {
  UMBRA_TRY(CheckOptions(options));
  auto image = UMBRA_TRY(ImageFile::Open(options.image_path, options.block_size, options.capacity_blocks));
  std::unique_ptr<WriteCache> cache;
  if (options.cache_bytes != 0) {
    cache = UMBRA_TRY(WriteCache::Create(options.block_size, options.cache_bytes / options.block_size));
  }
  auto mem = UMBRA_TRY(
      DeviceMemory::Create(options.name + "-regs-dma", kRegisterWindowSize, kDmaPoolOffset, options.dma_size));
  auto wake = UMBRA_TRY(ipc::EventFd::Create());
  auto device = std::unique_ptr<DiskDevice>(
      new DiskDevice(std::move(options), std::move(image), std::move(cache), std::move(mem), std::move(wake)));
  std::lock_guard lock(device->mu_);
  device->PowerOnRegisters();
  return device;
}

DiskDevice::DiskDevice(DiskOptions options, std::unique_ptr<ImageFile> image, std::unique_ptr<WriteCache> cache,
                       DeviceMemory mem, ipc::EventFd wake)
    : options_(std::move(options)), capacity_blocks_(image->capacity_blocks()),
      max_transfer_blocks_(options_.max_transfer_bytes / options_.block_size), image_(std::move(image)),
      cache_(std::move(cache)),
      writeback_start_blocks_(cache_ == nullptr || options_.writeback_start_percent >= 100
                                  ? UINT64_MAX
                                  : cache_->capacity_blocks() * options_.writeback_start_percent / 100),
      mem_(std::move(mem)), regs_(mem_.region->at<DiskRegisters>(0)), tag_busy_(options_.tag_limit, 0),
      cq_slot_tag_(kMaxQueueDepth, kNoTag), staged_(kMaxQueueDepth), counters_(std::make_unique<Counters>()),
      thread_(std::move(wake)) {}

DiskDevice::~DiskDevice() { Stop(); }

Resources DiskDevice::resources() const { return mem_.resources(); }

DiskRegisters* DiskDevice::registers() const { return regs_; }

std::span<std::byte> DiskDevice::dma() const { return {mem_.region->data() + kDmaPoolOffset, options_.dma_size}; }

std::byte* DiskDevice::DmaAt(uint64_t offset) const { return mem_.region->data() + kDmaPoolOffset + offset; }

std::byte* DiskDevice::BufferOf(const DiskCommand& c) const {
  return (c.flags & kCommandHostMemory) != 0 ? host_memory_.data() + c.buffer_offset : DmaAt(c.buffer_offset);
}

void DiskDevice::MapHostMemory(std::span<std::byte> memory) {
  auto lock = LockFromOutside();
  host_memory_ = memory;
  regs_->host_memory_size.store(memory.size(), std::memory_order_release);
}

// ---- lifecycle ----

void DiskDevice::Start() {
  thread_.Start(
      options_.name, [this] { Run(); }, options_.hw_cpu);
}

int64_t DiskDevice::thread_cpu_ns() const { return thread_.cpu_ns(); }

void DiskDevice::Stop() { thread_.Stop(); }

std::unique_lock<std::mutex> DiskDevice::LockFromOutside() const {
  waiters_.fetch_add(1, std::memory_order_acq_rel);
  std::unique_lock lock(mu_);
  waiters_.fetch_sub(1, std::memory_order_acq_rel);
  return lock;
}

void DiskDevice::Reset() {
  auto lock = LockFromOutside();
  if (cache_) cache_->Drop();
  background_writeback_failed_ = false;
  enabled_ = false;
  sq_offset_ = cq_offset_ = 0;
  depth_ = sq_head_ = cq_tail_ = cq_head_ = 0;
  last_bad_sq_tail_ = last_bad_cq_head_ = 0;
  std::fill(tag_busy_.begin(), tag_busy_.end(), 0);
  std::fill(cq_slot_tag_.begin(), cq_slot_tag_.end(), kNoTag);
  PowerOnRegisters();
  mem_.interrupt.Drain();
}

void DiskDevice::PowerOnRegisters() {
  regs_->magic.store(kMagic, std::memory_order_relaxed);
  regs_->version.store(kVersion, std::memory_order_relaxed);
  regs_->capacity_blocks.store(capacity_blocks_, std::memory_order_relaxed);
  regs_->block_size.store(options_.block_size, std::memory_order_relaxed);
  regs_->max_queue_depth.store(options_.max_queue_depth, std::memory_order_relaxed);
  regs_->max_transfer_blocks.store(max_transfer_blocks_, std::memory_order_relaxed);
  regs_->tag_limit.store(options_.tag_limit, std::memory_order_relaxed);
  regs_->features.store(kFeatureFua | kFeatureDiscard | (cache_ ? kFeatureWriteCache : 0), std::memory_order_relaxed);
  regs_->dma_size.store(options_.dma_size, std::memory_order_relaxed);
  regs_->control.store(0, std::memory_order_relaxed);
  const uint32_t wc = options_.write_cache_power_on == WriteCachePowerOn::kEnabled ? kWriteCacheEnable : 0;
  regs_->write_cache.store(wc, std::memory_order_relaxed);
  last_control_ = 0;
  last_write_cache_ = wc;
  cache_on_ = cache_ != nullptr && wc != 0;
  regs_->sq_offset.store(0, std::memory_order_relaxed);
  regs_->cq_offset.store(0, std::memory_order_relaxed);
  regs_->queue_depth.store(0, std::memory_order_relaxed);
  regs_->reserved0.store(0, std::memory_order_relaxed);
  regs_->sq_tail.store(0, std::memory_order_relaxed);
  regs_->sq_head.store(0, std::memory_order_relaxed);
  regs_->cq_tail.store(0, std::memory_order_relaxed);
  regs_->cq_head.store(0, std::memory_order_relaxed);
  // doorbell_wanted reflects the hardware thread's state and is left alone.
  regs_->int_mask.store(~uint32_t{0}, std::memory_order_relaxed);
  regs_->int_cause.store(0, std::memory_order_relaxed);
  regs_->reserved1.store(0, std::memory_order_relaxed);
  // host_memory_size belongs to the host's mapping, which a reset keeps.
  regs_->host_memory_size.store(host_memory_.size(), std::memory_order_relaxed);
  SetStatus((removed_.load(std::memory_order_relaxed) ? kStatusRemoved : 0) | (cache_on_ ? kStatusCacheOn : 0));
}

void DiskDevice::SetStatus(uint32_t status) { regs_->status.store(status, std::memory_order_release); }

void DiskDevice::Unplug(UnplugMode mode) {
  auto lock = LockFromOutside();
  if (removed_.load(std::memory_order_relaxed)) return;
  if (cache_ && mode == UnplugMode::kOrderly) WriteBackLocked();
  if (cache_) cache_->Drop();
  removed_.store(true, std::memory_order_release);
  cache_on_ = false;
  SetStatus(kStatusRemoved | (enabled_ ? kStatusReady : 0));
  RaiseInterrupt(kIntStatus);
}

// ---- hardware thread ----

void DiskDevice::Run() {
  Spin idle(options_.spin_ns, Spin::kTakeTurns);
  while (!thread_.stopping()) {
    if (waiters_.load(std::memory_order_acquire) != 0) {
      CpuRelax();
      continue;
    }
    if (Poll()) {
      idle.Reset();
      continue;
    }
    if (idle.Again()) continue;
    Sleep();
    idle.Reset();
  }
}

void DiskDevice::Sleep() {
  // Dekker with the driver: we publish "ring me" and then look for work; it
  // publishes work (sq_tail, cq_head, control) and then looks at the flag.
  regs_->doorbell_wanted.store(1, std::memory_order_seq_cst);
  bool pending;
  {
    std::lock_guard lock(mu_);
    pending = WorkPending();
  }
  if (!pending) {
    pollfd fds[2] = {{mem_.doorbell.fd(), POLLIN, 0}, {thread_.wake().fd(), POLLIN, 0}};
    while (::poll(fds, 2, -1) < 0 && errno == EINTR) {}
    mem_.doorbell.Drain();
    thread_.wake().Drain();
  }
  regs_->doorbell_wanted.store(0, std::memory_order_seq_cst);
}

bool DiskDevice::WorkPending() const {
  if ((regs_->control.load(std::memory_order_seq_cst) & kControlEnable) != last_control_) return true;
  if ((regs_->write_cache.load(std::memory_order_seq_cst) & kWriteCacheEnable) != last_write_cache_) return true;
  if (!enabled_) return false;
  const uint32_t sq_tail = regs_->sq_tail.load(std::memory_order_seq_cst);
  const uint32_t cq_head = regs_->cq_head.load(std::memory_order_seq_cst);
  if (sq_tail == sq_head_ || sq_tail - sq_head_ > depth_) return false;
  const bool cq_head_valid = cq_head - cq_head_ <= cq_tail_ - cq_head_;
  return cq_head_valid && cq_tail_ - cq_head != depth_;
}

bool DiskDevice::Poll() {
  std::lock_guard lock(mu_);
  bool progress = CheckControl();
  progress |= CheckWriteCache();
  const bool busy = enabled_ && ProcessQueue();
  progress |= busy;
  progress |= WriteBackInBackground(!busy);
  return progress;
}

// Background write-back, a round of the oldest dirty blocks at a time: while
// the cache is fuller than writeback_start_percent (between batches, so that
// the cost is spread over the writes instead of stalling every command while
// a full cache is written back whole), and with idle_writeback whenever the
// queue is empty (so that a flush finds little left to write).
bool DiskDevice::WriteBackInBackground(bool idle) {
  constexpr uint64_t kBlocksPerRound = 32;
  if (!cache_ || background_writeback_failed_) return false;
  const uint64_t dirty = cache_->dirty_blocks();
  uint64_t due = 0;
  if (dirty > writeback_start_blocks_) {
    due = dirty - writeback_start_blocks_;
  } else if (idle && options_.idle_writeback) {
    due = dirty;
  }
  if (due == 0) return false;
  auto written = cache_->WriteBackOldest(*image_, std::min(due, kBlocksPerRound));
  if (!written) {
    Counters::Add(counters_->io_errors);
    background_writeback_failed_ = true;  // a flush will report it; no retrying in a loop
    return false;
  }
  Counters::Add(counters_->writeback_blocks, *written);
  Counters::Add(counters_->background_writebacks);
  return true;
}

bool DiskDevice::CheckControl() {
  const uint32_t control = regs_->control.load(std::memory_order_acquire) & kControlEnable;
  if (control == last_control_) return false;
  last_control_ = control;
  if (control != 0) {
    EnableQueues();
  } else {
    DisableQueues();
  }
  return true;
}

void DiskDevice::EnableQueues() {
  const uint64_t sq = regs_->sq_offset.load(std::memory_order_acquire);
  const uint64_t cq = regs_->cq_offset.load(std::memory_order_acquire);
  const uint32_t depth = regs_->queue_depth.load(std::memory_order_acquire);
  const uint32_t removed = removed_.load(std::memory_order_relaxed) ? kStatusRemoved : 0;
  const uint32_t cache = cache_on_ ? kStatusCacheOn : 0;
  const bool ok =
      depth >= kMinQueueDepth && depth <= options_.max_queue_depth && std::has_single_bit(depth) &&
      sq % kQueueAlignment == 0 && cq % kQueueAlignment == 0 &&
      InRange(sq, uint64_t{depth} * sizeof(DiskCommand), options_.dma_size) &&
      InRange(cq, uint64_t{depth} * sizeof(DiskCompletion), options_.dma_size) &&
      (sq + uint64_t{depth} * sizeof(DiskCommand) <= cq || cq + uint64_t{depth} * sizeof(DiskCompletion) <= sq);
  enabled_ = false;
  if (!ok) {
    Refuse(FaultKind::kQueueConfig, Status::kInvalidBuffer, DiskCommand{});
    SetStatus(kStatusConfigError | removed | cache);
    RaiseInterrupt(kIntStatus);
    return;
  }
  sq_offset_ = sq;
  cq_offset_ = cq;
  depth_ = depth;
  sq_head_ = cq_tail_ = cq_head_ = 0;
  last_bad_sq_tail_ = last_bad_cq_head_ = 0;
  std::fill(tag_busy_.begin(), tag_busy_.end(), 0);
  std::fill(cq_slot_tag_.begin(), cq_slot_tag_.end(), kNoTag);
  regs_->sq_head.store(0, std::memory_order_release);
  regs_->cq_tail.store(0, std::memory_order_release);
  enabled_ = true;
  SetStatus(kStatusReady | removed | cache);
  RaiseInterrupt(kIntStatus);
}

void DiskDevice::DisableQueues() {
  enabled_ = false;
  const uint32_t status = regs_->status.load(std::memory_order_relaxed);
  SetStatus(status & ~(kStatusReady | kStatusConfigError));
  RaiseInterrupt(kIntStatus);
}

bool DiskDevice::CheckWriteCache() {
  const uint32_t wc = regs_->write_cache.load(std::memory_order_acquire) & kWriteCacheEnable;
  if (wc == last_write_cache_) return false;
  last_write_cache_ = wc;
  // Turning the cache off makes what it holds durable first, as on a real disk.
  if (wc == 0 && cache_ && !cache_->empty()) WriteBackLocked();
  cache_on_ = wc != 0 && cache_ != nullptr && !removed_.load(std::memory_order_relaxed);
  const uint32_t status = regs_->status.load(std::memory_order_relaxed);
  SetStatus(cache_on_ ? status | kStatusCacheOn : status & ~kStatusCacheOn);
  return true;
}

bool DiskDevice::AdvanceCqHead(uint32_t cq_head) {
  if (cq_head == cq_head_) return true;
  // Valid heads lie in [cq_head_, cq_tail_]: the driver cannot consume
  // completions that were never posted.
  if (cq_head - cq_head_ > cq_tail_ - cq_head_) {
    if (cq_head != last_bad_cq_head_) {
      last_bad_cq_head_ = cq_head;
      Refuse(FaultKind::kQueuePointer, Status::kInvalidBuffer, DiskCommand{});
    }
    return false;
  }
  for (uint32_t p = cq_head_; p != cq_head; ++p) {
    uint32_t& tag = cq_slot_tag_[p & (depth_ - 1)];
    if (tag != kNoTag) tag_busy_[tag] = 0;
    tag = kNoTag;
  }
  cq_head_ = cq_head;
  return true;
}

bool DiskDevice::ProcessQueue() {
  const uint32_t sq_tail = regs_->sq_tail.load(std::memory_order_acquire);
  const uint32_t cq_head = regs_->cq_head.load(std::memory_order_acquire);
  if (!AdvanceCqHead(cq_head)) return false;
  const uint32_t pending = sq_tail - sq_head_;
  if (pending == 0) return false;
  if (pending > depth_) {
    if (sq_tail != last_bad_sq_tail_) {
      last_bad_sq_tail_ = sq_tail;
      Refuse(FaultKind::kQueuePointer, Status::kInvalidBuffer, DiskCommand{});
    }
    return false;
  }
  const uint32_t room = depth_ - (cq_tail_ - cq_head_);
  const uint32_t count = std::min(pending, room);
  if (count == 0) return false;
  // Payloads in host memory were written before the driver (another
  // process) published these commands.
  if (!host_memory_.empty()) CrossProcessAcquire(host_memory_.data());
  const auto* sq = reinterpret_cast<const std::byte*>(DmaAt(sq_offset_));
  int64_t last_post = MonotonicNanos();
  uint32_t staged = 0;
  for (uint32_t i = 0; i < count; ++i) {
    DiskCommand command;  // copied out once; the driver may change the slot at any time
    std::memcpy(&command, sq + ((sq_head_ + staged) & (depth_ - 1)) * sizeof(DiskCommand), sizeof command);
    Staged& slot = staged_[staged++];
    slot.busy_tag = kNoTag;
    const Status status = Execute(command, &slot.busy_tag);
    slot.completion = DiskCompletion{command.tag, static_cast<uint16_t>(status), 0, command.user_data};
    if (i + 1 == count) break;
    const int64_t now = MonotonicNanos();
    if (now - last_post < options_.post_interval_ns) continue;
    Publish(staged);
    staged = 0;
    last_post = now;
  }
  Publish(staged);
  Counters::Add(counters_->batches);
  return true;
}

void DiskDevice::Publish(uint32_t count) {
  sq_head_ += count;
  regs_->sq_head.store(sq_head_, std::memory_order_release);
  PostCompletions(count);
}

void DiskDevice::PostCompletions(uint32_t count) {
  auto* cq = reinterpret_cast<std::byte*>(DmaAt(cq_offset_));
  const bool reversed = options_.completion_order == CompletionOrder::kReversedPerBatch;
  for (uint32_t i = 0; i < count; ++i) {
    const Staged& staged = staged_[reversed ? count - 1 - i : i];
    const uint32_t slot = (cq_tail_ + i) & (depth_ - 1);
    std::memcpy(cq + slot * sizeof(DiskCompletion), &staged.completion, sizeof(DiskCompletion));
    cq_slot_tag_[slot] = staged.busy_tag;
  }
  cq_tail_ += count;
  if (!host_memory_.empty()) CrossProcessRelease(host_memory_.data());
  regs_->cq_tail.store(cq_tail_, std::memory_order_release);
  RaiseInterrupt(kIntCompletion);
}

void DiskDevice::RaiseInterrupt(uint32_t cause) {
  if (hw::RaiseInterrupt(regs_->int_cause, regs_->int_mask, MaskSense::kBitMasks, cause, mem_.interrupt)) {
    Counters::Add(counters_->interrupts);
  }
}

void DiskDevice::Refuse(FaultKind kind, Status status, const DiskCommand& command) {
  faults_.fetch_add(1, std::memory_order_relaxed);
  if (kind == FaultKind::kCommand) Counters::Add(counters_->refused);
  if (options_.on_fault) options_.on_fault(DiskFault{kind, status, command});
}

// ---- commands ----

Status DiskDevice::Execute(const DiskCommand& command, uint32_t* busy_tag) {
  if (removed_.load(std::memory_order_relaxed)) {
    Counters::Add(counters_->no_device);
    return Status::kNoDevice;
  }
  const Status status = Validate(command);
  if (status != Status::kOk) {
    Refuse(FaultKind::kCommand, status, command);
    return status;
  }
  tag_busy_[command.tag] = 1;
  *busy_tag = command.tag;
  switch (static_cast<Opcode>(command.opcode)) {
    case Opcode::kRead: return Read(command);
    case Opcode::kWrite: return Write(command);
    case Opcode::kFlush: return Flush();
    case Opcode::kWriteFua: return WriteFua(command);
    case Opcode::kDiscard: return Discard(command);
    case Opcode::kIdentify: return Identify(command);
  }
  return Status::kInvalidOpcode;  // unreachable: Validate checked the opcode
}

Status DiskDevice::Validate(const DiskCommand& c) const {
  // c.opcode is a raw byte from the driver: range-check it before it becomes an Opcode.
  if (c.opcode < static_cast<uint8_t>(Opcode::kRead) || c.opcode > static_cast<uint8_t>(Opcode::kIdentify)) {
    return Status::kInvalidOpcode;
  }
  const auto opcode = static_cast<Opcode>(c.opcode);
  bool io = false;
  switch (opcode) {
    case Opcode::kRead:
    case Opcode::kWrite:
    case Opcode::kWriteFua: io = true; break;
    case Opcode::kFlush:
    case Opcode::kDiscard:
    case Opcode::kIdentify: break;
  }
  if (c.tag >= options_.tag_limit) return Status::kInvalidTag;
  if (tag_busy_[c.tag] != 0) return Status::kDuplicateTag;
  if (opcode == Opcode::kFlush) return Status::kOk;
  if (opcode == Opcode::kIdentify) return ValidateBuffer(c, sizeof(DiskIdentify));
  if (c.num_blocks == 0 || (io && c.num_blocks > max_transfer_blocks_)) return Status::kInvalidBlockCount;
  if (!InRange(c.lba, c.num_blocks, capacity_blocks_)) return Status::kLbaOutOfRange;
  if (!io) return Status::kOk;
  return ValidateBuffer(c, uint64_t{c.num_blocks} * options_.block_size);
}

Status DiskDevice::ValidateBuffer(const DiskCommand& c, uint64_t length) const {
  const bool exact = static_cast<Opcode>(c.opcode) != Opcode::kIdentify;
  if (exact ? c.buffer_length != length : c.buffer_length < length) return Status::kInvalidBuffer;
  const uint64_t window = (c.flags & kCommandHostMemory) != 0 ? host_memory_.size() : options_.dma_size;
  if (!InRange(c.buffer_offset, length, window)) return Status::kInvalidBuffer;
  if (c.buffer_offset % kBufferAlignment != 0) return Status::kMisaligned;
  return Status::kOk;
}

Status DiskDevice::Read(const DiskCommand& c) {
  const uint64_t length = uint64_t{c.num_blocks} * options_.block_size;
  std::byte* buffer = BufferOf(c);
  if (!image_->Read({buffer, length}, c.lba * options_.block_size)) {
    Counters::Add(counters_->io_errors);
    return Status::kIoError;
  }
  if (cache_) {
    const uint32_t bs = options_.block_size;
    cache_->ForEachInRange(c.lba, c.num_blocks, [&](uint64_t lba, const std::byte* data) {
      std::memcpy(buffer + (lba - c.lba) * bs, data, bs);
    });
  }
  Counters::Add(counters_->reads);
  Counters::Add(counters_->bytes_read, length);
  return Status::kOk;
}

Status DiskDevice::Write(const DiskCommand& c) {
  const uint32_t bs = options_.block_size;
  const uint64_t length = uint64_t{c.num_blocks} * bs;
  const std::byte* buffer = BufferOf(c);
  Counters::Add(counters_->writes);
  Counters::Add(counters_->bytes_written, length);
  if (cache_on_ && !cache_->HasRoom(c.num_blocks)) {
    // Full: write everything back, like a disk evicting dirty lines.
    Counters::Add(counters_->evictions);
    if (Status s = WriteBackLocked(); s != Status::kOk) return s;
  }
  if (cache_on_ && cache_->HasRoom(c.num_blocks)) {
    for (uint32_t i = 0; i < c.num_blocks; ++i) std::memcpy(cache_->Put(c.lba + i), buffer + uint64_t{i} * bs, bs);
    return Status::kOk;
  }
  // Cache off (or a write larger than the whole cache): straight to the image,
  // keeping any cached copies of these blocks in step.
  if (!image_->Write({buffer, length}, c.lba * bs)) {
    Counters::Add(counters_->io_errors);
    return Status::kIoError;
  }
  if (cache_) {
    cache_->ForEachInRange(c.lba, c.num_blocks,
                           [&](uint64_t lba, std::byte* data) { std::memcpy(data, buffer + (lba - c.lba) * bs, bs); });
  }
  return Status::kOk;
}

Status DiskDevice::WriteFua(const DiskCommand& c) {
  const uint32_t bs = options_.block_size;
  const uint64_t length = uint64_t{c.num_blocks} * bs;
  const std::byte* buffer = BufferOf(c);
  Counters::Add(counters_->fua_writes);
  Counters::Add(counters_->bytes_written, length);
  if (!image_->Write({buffer, length}, c.lba * bs)) {
    Counters::Add(counters_->io_errors);
    return Status::kIoError;
  }
  // Cached copies of these blocks would otherwise shadow the newer data.
  if (cache_) {
    cache_->ForEachInRange(c.lba, c.num_blocks,
                           [&](uint64_t lba, std::byte* data) { std::memcpy(data, buffer + (lba - c.lba) * bs, bs); });
  }
  return Synced();
}

Status DiskDevice::Flush() {
  Counters::Add(counters_->flushes);
  if (Status s = WriteBackLocked(); s != Status::kOk) return s;
  return Synced();
}

Status DiskDevice::Synced() {
  if (options_.sync == SyncMode::kNone) return Status::kOk;
  Counters::Add(counters_->syncs);
  if (image_->Sync()) return Status::kOk;
  Counters::Add(counters_->io_errors);
  return Status::kIoError;
}

Status DiskDevice::WriteBackLocked() {
  if (!cache_ || cache_->empty()) return Status::kOk;
  auto written = cache_->WriteBack(*image_);
  if (!written) {
    Counters::Add(counters_->io_errors);
    return Status::kIoError;
  }
  background_writeback_failed_ = false;
  Counters::Add(counters_->writeback_blocks, *written);
  return Status::kOk;
}

Status DiskDevice::Discard(const DiskCommand& c) {
  const uint32_t bs = options_.block_size;
  Counters::Add(counters_->discards);
  if (!image_->Discard(c.lba * bs, uint64_t{c.num_blocks} * bs)) {
    Counters::Add(counters_->io_errors);
    return Status::kIoError;
  }
  if (cache_) {
    cache_->ForEachInRange(c.lba, c.num_blocks, [&](uint64_t, std::byte* data) { std::memset(data, 0, bs); });
  }
  return Status::kOk;
}

Status DiskDevice::Identify(const DiskCommand& c) {
  DiskIdentify id{};
  id.magic = kMagic;
  id.version = kVersion;
  id.capacity_blocks = capacity_blocks_;
  id.block_size = options_.block_size;
  id.max_queue_depth = options_.max_queue_depth;
  id.max_transfer_blocks = max_transfer_blocks_;
  id.tag_limit = options_.tag_limit;
  id.features = kFeatureFua | kFeatureDiscard | (cache_ ? kFeatureWriteCache : 0);
  id.write_cache_enabled = cache_on_ ? 1 : 0;
  id.cache_bytes = options_.cache_bytes;
  CopyName(id.serial, sizeof id.serial, options_.name);
  CopyName(id.model, sizeof id.model, "Umbra emulated disk");
  std::memcpy(BufferOf(c), &id, sizeof id);
  Counters::Add(counters_->identifies);
  return Status::kOk;
}

// ---- inspection ----

DiskCounters DiskDevice::counters() const {
  const Counters& c = *counters_;
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  return DiskCounters{.reads = get(c.reads),
                      .writes = get(c.writes),
                      .fua_writes = get(c.fua_writes),
                      .flushes = get(c.flushes),
                      .discards = get(c.discards),
                      .identifies = get(c.identifies),
                      .bytes_read = get(c.bytes_read),
                      .bytes_written = get(c.bytes_written),
                      .refused = get(c.refused),
                      .no_device = get(c.no_device),
                      .io_errors = get(c.io_errors),
                      .writeback_blocks = get(c.writeback_blocks),
                      .evictions = get(c.evictions),
                      .background_writebacks = get(c.background_writebacks),
                      .syncs = get(c.syncs),
                      .interrupts = get(c.interrupts),
                      .batches = get(c.batches)};
}

Result<std::vector<std::byte>> DiskDevice::ReadDurable(uint64_t lba, uint32_t blocks) const {
  if (!InRange(lba, blocks, capacity_blocks_)) return Fail(Errc::kInvalidArgument, "blocks outside the disk");
  std::vector<std::byte> out(uint64_t{blocks} * options_.block_size);
  UMBRA_TRY(image_->Read(out, lba * options_.block_size));
  return out;
}

Result<std::vector<std::byte>> DiskDevice::ReadCurrent(uint64_t lba, uint32_t blocks) const {
  if (!InRange(lba, blocks, capacity_blocks_)) return Fail(Errc::kInvalidArgument, "blocks outside the disk");
  const uint32_t bs = options_.block_size;
  std::vector<std::byte> out(uint64_t{blocks} * bs);
  // Image and cache under one lock: a write-back in between would otherwise
  // leave us with the old image contents and an empty cache.
  auto lock = LockFromOutside();
  UMBRA_TRY(image_->Read(out, lba * bs));
  if (cache_) {
    cache_->ForEachInRange(
        lba, blocks, [&](uint64_t at, const std::byte* data) { std::memcpy(out.data() + (at - lba) * bs, data, bs); });
  }
  return out;
}

bool DiskDevice::IsCached(uint64_t lba) const {
  auto lock = LockFromOutside();
  return cache_ && cache_->Find(lba) != nullptr;
}

uint64_t DiskDevice::cached_blocks() const {
  auto lock = LockFromOutside();
  return cache_ ? cache_->dirty_blocks() : 0;
}

Result<void> DiskDevice::WriteBackCache() {
  auto lock = LockFromOutside();
  if (removed_.load(std::memory_order_relaxed))
    return Fail(Errc::kNoDevice, "disk " + options_.name + " was unplugged");
  if (WriteBackLocked() != Status::kOk) return Fail(Errc::kIo, "disk " + options_.name + ": write-back failed");
  return {};
}

}  // namespace umbra::hw::disk
