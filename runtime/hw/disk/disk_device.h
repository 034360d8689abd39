// DiskDevice: the emulated disk ("umbra,disk-emu"), an NVMe-like block device
// with one tagged submission/completion queue pair in its DMA pool, a
// volatile write cache and a backing image file.
//
// The driver programs it through the datasheet in disk_regs.h alone; the host
// side creates it, hands resources() to the driver, and uses the inspection
// helpers below in tests (what is durable on the image vs only cached).
//
//   DiskOptions options;
//   options.image_path = "disk0.img";
//   options.capacity_blocks = 1 << 18;  // 1 GiB of 4 KiB blocks, if new
//   auto disk = UMBRA_TRY(DiskDevice::Create(std::move(options)));
//   disk->Start();
//   SendToDriver(disk->resources());
//   ...                          // the driver dies
//   disk->Reset();               // unflushed cached writes are lost, as on a power cut
//   SendToDriver(disk->resources());
//
// Semantics: with the write cache on, a completed kWrite lives in host memory
// until a kFlush, until background write-back destages it (oldest first,
// between batches while more than writeback_start_percent of the cache is
// dirty, and with idle_writeback whenever the queue is empty), or until the
// cache fills and is written back whole. Reset() and destruction drop what
// is still cached. kWriteFua and kFlush put data "on the image":
// written to the image file with pwrite, which survives the device and the
// host process; with SyncMode::kFdatasync also fdatasync'd, surviving a host
// crash. Commands are executed in submission order. Completions are posted
// in groups: at the end of each batch consumed from the SQ, and during a long
// batch every post_interval_ns, so the driver can reap and resubmit while the
// device works on. Within a group they are in submission order, or reversed
// with CompletionOrder::kReversedPerBatch (to test drivers that match by tag).
//
// Thread safety: the hardware thread (Start/Stop) executes commands; Reset,
// Unplug, the inspection helpers and the accessors may be called from any
// thread (they take the device's state mutex, so they wait for the batch in
// progress). The fault callback runs on the hardware thread with that mutex
// held: it must not call back into the device.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "runtime/hw/device.h"
#include "runtime/hw/device_memory.h"
#include "runtime/hw/disk/disk_regs.h"
#include "runtime/hw/hw_thread.h"
#include "runtime/ipc/event_fd.h"
#include "runtime/ipc/shared_memory.h"

namespace umbra::hw::disk {

class ImageFile;
class WriteCache;

// Whether flush and FUA writes also fdatasync the image (off: pwrite only).
enum class SyncMode { kNone, kFdatasync };
// The order completions of one consumed batch are posted in.
enum class CompletionOrder { kSubmission, kReversedPerBatch };
// The write_cache register's power-on (and after-Reset) value.
enum class WriteCachePowerOn { kEnabled, kDisabled };
// Unplug: kSurprise loses the write cache (a yanked disk); kOrderly writes it
// back first (a removal the disk had time to prepare for).
enum class UnplugMode { kSurprise, kOrderly };

// What was refused.
enum class FaultKind {
  kCommand,       // a command failed validation; `status` says why
  kQueueConfig,   // enable with a bad sq_offset / cq_offset / queue_depth
  kQueuePointer,  // sq_tail or cq_head outside the queue's valid window
};

struct DiskFault {
  FaultKind kind;
  Status status;        // kCommand: the status the command completed with
  DiskCommand command;  // kCommand: the copy the device validated; zero otherwise
};

struct DiskOptions {
  std::string name = "disk0";             // names the shared region
  std::string image_path;                 // the backing image (required)
  uint64_t capacity_blocks = 0;           // blocks of a new image; 0: an existing image's size
  uint32_t block_size = 4096;             // 512 or 4096
  uint64_t dma_size = 4 << 20;            // bytes in the DMA pool
  uint32_t max_queue_depth = 128;         // power of two, <= kMaxQueueDepth
  uint32_t max_transfer_bytes = 1 << 20;  // per read/write; a multiple of block_size
  uint32_t tag_limit = 1024;              // tags are < tag_limit (<= 65536)
  uint64_t cache_bytes = 16 << 20;        // volatile write cache; 0: the disk has none
  WriteCachePowerOn write_cache_power_on = WriteCachePowerOn::kEnabled;
  SyncMode sync = SyncMode::kNone;
  CompletionOrder completion_order = CompletionOrder::kSubmission;
  int64_t spin_ns = 120'000;          // how long the idle hardware thread polls (taking turns) before sleeping
  int64_t post_interval_ns = 20'000;  // a long batch posts the completions it has every this often
  // While more than this share of the cache is dirty, the hardware thread
  // writes back the oldest blocks between batches and when idle, as a disk
  // destages in the background. 100: only a flush or a full cache writes back.
  uint32_t writeback_start_percent = 50;
  // Also write back the oldest dirty blocks whenever the queue is empty (as
  // disks destage in idle time): faster flushes, but less that a reset loses.
  bool idle_writeback = false;
  int hw_cpu = -1;  // the CPU the hardware thread runs on (as hardware has its own); -1: any
  std::function<void(const DiskFault&)> on_fault;  // optional; see the class comment
};

// Monotonic counters since creation (Reset does not clear them).
struct DiskCounters {
  uint64_t reads = 0;
  uint64_t writes = 0;  // kWrite, cached or not
  uint64_t fua_writes = 0;
  uint64_t flushes = 0;
  uint64_t discards = 0;
  uint64_t identifies = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;          // by kWrite and kWriteFua
  uint64_t refused = 0;                // commands refused by validation (also in faults())
  uint64_t no_device = 0;              // commands failed with kNoDevice after Unplug
  uint64_t io_errors = 0;              // commands failed with kIoError
  uint64_t writeback_blocks = 0;       // blocks written from the cache to the image
  uint64_t evictions = 0;              // write-backs forced by a full cache
  uint64_t background_writebacks = 0;  // rounds of background write-back
  uint64_t syncs = 0;                  // fdatasync calls
  uint64_t interrupts = 0;             // interrupt eventfd signals
  uint64_t batches = 0;                // times the device consumed commands from the SQ
};

class DiskDevice final : public Device {
 public:
  static Result<std::unique_ptr<DiskDevice>> Create(DiskOptions options);
  // Stops the hardware thread. Unflushed cached writes are lost (power off).
  ~DiskDevice() override;
  DiskDevice(const DiskDevice&) = delete;
  DiskDevice& operator=(const DiskDevice&) = delete;

  // Device.
  std::string_view compatible() const override { return kCompatible; }
  Resources resources() const override;
  void Start() override;
  void Stop() override;
  void Reset() override;
  uint64_t faults() const override { return faults_.load(std::memory_order_relaxed); }
  // Commands with kCommandHostMemory then name buffers in `memory` (the
  // host's data pool); host_memory_size tells the driver. Taken back with an
  // empty span, which waits for the command in progress.
  void MapHostMemory(std::span<std::byte> memory) override;

  // Hot-unplug: from now on every command completes with Status::kNoDevice
  // and the image is never touched again (it stays intact on disk); the
  // status register shows kStatusRemoved and kIntStatus is raised. Permanent:
  // Reset() does not bring the disk back.
  void Unplug(UnplugMode mode);
  bool unplugged() const { return removed_.load(std::memory_order_acquire); }

  uint64_t capacity_blocks() const { return capacity_blocks_; }
  uint32_t block_size() const { return options_.block_size; }
  const DiskOptions& options() const { return options_; }
  DiskCounters counters() const;
  // CPU time the hardware thread has used (ns; 0 when not started). For
  // benchmarks that split a workload's CPU cost between its parties. Call
  // it from the thread that calls Start and Stop.
  int64_t thread_cpu_ns() const;

  // The host's view of the shared region (tests play the driver with these).
  DiskRegisters* registers() const;
  std::span<std::byte> dma() const;

  // Inspection helpers. ReadDurable reads only the image (what survives a
  // Reset); ReadCurrent what a kRead would return (cache over image).
  Result<std::vector<std::byte>> ReadDurable(uint64_t lba, uint32_t blocks) const;
  Result<std::vector<std::byte>> ReadCurrent(uint64_t lba, uint32_t blocks) const;
  bool IsCached(uint64_t lba) const;
  uint64_t cached_blocks() const;
  // Writes the cache back to the image from the host side (orderly shutdown).
  Result<void> WriteBackCache();

 private:
  struct Counters;
  struct Staged {
    DiskCompletion completion;
    uint32_t busy_tag;  // the tag this completion frees, or kNoTag when refused
  };
  static constexpr uint32_t kNoTag = ~uint32_t{0};

  DiskDevice(DiskOptions options, std::unique_ptr<ImageFile> image, std::unique_ptr<WriteCache> cache, DeviceMemory mem,
             ipc::EventFd wake);

  // Hardware thread.
  void Run();
  void Sleep();
  bool Poll();
  bool WorkPending() const;
  bool CheckControl();
  bool CheckWriteCache();
  bool ProcessQueue();
  bool WriteBackInBackground(bool idle);
  bool AdvanceCqHead(uint32_t cq_head);
  void PostCompletions(uint32_t count);
  // Marks `count` commands consumed and posts their staged completions.
  void Publish(uint32_t count);
  void RaiseInterrupt(uint32_t cause);

  // Commands (hardware thread, mu_ held).
  Status Execute(const DiskCommand& command, uint32_t* busy_tag);
  Status Validate(const DiskCommand& command) const;
  Status ValidateBuffer(const DiskCommand& command, uint64_t length) const;
  Status Read(const DiskCommand& command);
  Status Write(const DiskCommand& command);
  Status WriteFua(const DiskCommand& command);
  Status Flush();
  Status Discard(const DiskCommand& command);
  Status Identify(const DiskCommand& command);
  Status WriteBackLocked();
  Status Synced();
  void Refuse(FaultKind kind, Status status, const DiskCommand& command);

  // Register state (mu_ held).
  void EnableQueues();
  void DisableQueues();
  void PowerOnRegisters();
  void SetStatus(uint32_t status);
  std::byte* DmaAt(uint64_t offset) const;
  // The payload a validated command names: in the DMA pool or host memory.
  std::byte* BufferOf(const DiskCommand& command) const;
  // mu_, taken ahead of the hardware thread (for calls from other threads).
  std::unique_lock<std::mutex> LockFromOutside() const;

  const DiskOptions options_;
  const uint64_t capacity_blocks_;
  const uint32_t max_transfer_blocks_;
  std::unique_ptr<ImageFile> image_;       // the backing store; outlives every driver
  std::unique_ptr<WriteCache> cache_;      // the volatile cache; null when cache_bytes is 0
  const uint64_t writeback_start_blocks_;  // more dirty than this: write back (UINT64_MAX: never)
  DeviceMemory mem_;                       // registers + DMA pool, doorbell, interrupt: handed to each driver
  DiskRegisters* regs_;                    // into mem_.region

  // Everything below is the device's internal state, guarded by mu_.
  mutable std::mutex mu_;
  bool enabled_ = false;
  bool cache_on_ = false;
  bool background_writeback_failed_ = false;  // until the next write-back that works
  uint32_t last_control_ = 0;
  uint32_t last_write_cache_ = 0;
  uint64_t sq_offset_ = 0;
  uint64_t cq_offset_ = 0;
  uint32_t depth_ = 0;
  uint32_t sq_head_ = 0;
  uint32_t cq_tail_ = 0;
  uint32_t cq_head_ = 0;  // the last valid cq_head the driver wrote
  uint32_t last_bad_sq_tail_ = 0;
  uint32_t last_bad_cq_head_ = 0;
  std::vector<uint8_t> tag_busy_;      // per tag: outstanding
  std::vector<uint32_t> cq_slot_tag_;  // per CQ slot: the tag its completion frees
  std::vector<Staged> staged_;         // one batch of completions
  std::span<std::byte> host_memory_;   // mapped by the host for DMA (MapHostMemory)

  std::atomic<bool> removed_{false};
  // Callers waiting for mu_ (Reset, Unplug, helpers): the hardware thread
  // steps back so a driver that keeps it busy cannot starve them.
  mutable std::atomic<uint32_t> waiters_{0};
  std::atomic<uint64_t> faults_{0};
  std::unique_ptr<Counters> counters_;  // atomics, written by the hardware thread
  HardwareThread thread_;               // runs Run(); joined by Stop()
};

}  // namespace umbra::hw::disk
