// The datasheet of the Umbra emulated disk ("umbra,disk-emu").
//
// Everything a driver needs to program the disk is in this header, which
// depends only on the standard library: the register window, the command and
// completion formats of the queues, opcodes, status codes and interrupt
// causes. See docs/hw-disk.md for the state machine and worked examples.
//
// The disk's shared region (one memfd) holds the register window at offset 0
// (one 4 KiB page, a DiskRegisters) followed by the DMA pool. Every "offset"
// a driver writes (queue bases, data buffers) is relative to the start of the
// DMA pool, never an address. The driver owns the DMA pool's layout: it puts
// one submission queue (SQ) of DiskCommand and one completion queue (CQ) of
// DiskCompletion wherever it likes in the pool, plus its data buffers.
//
// Bring-up (the driver's probe):
//   1. check magic/version; read capacity_blocks, block_size, limits
//   2. write sq_offset, cq_offset, queue_depth; write sq_tail = cq_head = 0
//   3. optionally write write_cache; write int_mask (0 = all unmasked)
//   4. write control = kControlEnable; ring the doorbell
//   5. wait for status & kStatusReady (kIntStatus is raised when the device
//      accepts or refuses the configuration; kStatusConfigError on refusal)
//
// Submitting: fill sq[sq_tail % queue_depth] with a DiskCommand, then store
// sq_tail + 1 (release). Ring the doorbell unless doorbell_wanted is 0 (the
// device is polling and will see the new tail by itself); read
// doorbell_wanted AFTER storing sq_tail (both seq_cst), or always ring.
//
// Completing: the device writes cq[cq_tail % queue_depth], then stores
// cq_tail + 1 (release), sets kIntCompletion in int_cause and signals the
// interrupt eventfd. On the interrupt the driver clears the cause FIRST
// (int_cause.fetch_and(~kIntCompletion)), then consumes completions up to
// cq_tail (acquire) and stores the new cq_head; and rings the doorbell if
// doorbell_wanted is set (the device may be waiting for CQ space). A driver
// that polls the CQ may leave the cause set while it polls (the device then
// signals nothing) and acknowledge, then look at the CQ once more, just
// before it goes back to sleep on the interrupt.
//
// All queue indices are free-running 32-bit counters; the slot is
// index % queue_depth (queue_depth is a power of two). Completions are matched
// to commands by tag, never by position: the device may complete commands in
// a different order than they were submitted (see DiskCompletion).
//
// Thread safety: registers are lock-free atomics, so the same window works
// across processes; commands and completions are plain memory published by the
// tail stores above.
#pragma once

#include <atomic>
#include <cstdint>

namespace umbra::hw::disk {

inline constexpr uint32_t kMagic = 0x4B534455;  // "UDSK" little-endian
inline constexpr uint32_t kVersion = 1;
inline constexpr char kCompatible[] = "umbra,disk-emu";

// Region layout: registers at 0, DMA pool right after the register page.
inline constexpr uint64_t kRegisterWindowSize = 4096;
inline constexpr uint64_t kDmaPoolOffset = kRegisterWindowSize;

// Queue limits. queue_depth must be a power of two in [kMinQueueDepth,
// max_queue_depth]; the SQ and CQ bases must be kQueueAlignment-aligned.
inline constexpr uint32_t kMinQueueDepth = 2;
inline constexpr uint32_t kMaxQueueDepth = 256;
inline constexpr uint64_t kQueueAlignment = 64;
// Data buffers (command buffer_offset) must be kBufferAlignment-aligned.
inline constexpr uint64_t kBufferAlignment = 8;

// control register bits (driver writes).
inline constexpr uint32_t kControlEnable = 1u << 0;  // 0→1: accept queue config; 1→0: stop queues

// write_cache register bits (driver writes).
inline constexpr uint32_t kWriteCacheEnable = 1u << 0;  // 1→0 writes the cache back first

// status register bits (device writes).
inline constexpr uint32_t kStatusReady = 1u << 0;        // queues enabled and running
inline constexpr uint32_t kStatusConfigError = 1u << 1;  // last enable refused (bad queue config)
inline constexpr uint32_t kStatusRemoved = 1u << 2;      // hot-unplugged: every command fails kNoDevice
inline constexpr uint32_t kStatusCacheOn = 1u << 3;      // the volatile write cache is in effect

// int_cause / int_mask bits.
inline constexpr uint32_t kIntCompletion = 1u << 0;  // new completions in the CQ
inline constexpr uint32_t kIntStatus = 1u << 1;      // the status register changed

// features register bits (device writes, constant).
inline constexpr uint32_t kFeatureWriteCache = 1u << 0;  // has a volatile write cache
inline constexpr uint32_t kFeatureFua = 1u << 1;         // honours kWriteFua
inline constexpr uint32_t kFeatureDiscard = 1u << 2;     // discarded blocks read as zeros

// The register window. "device" registers are read-only for the driver (what
// it writes there is ignored or overwritten); "driver" registers are read by
// the device, copied out once and validated before use.
struct DiskRegisters {
  // ---- identity, constant after power-on (device) ----
  std::atomic<uint32_t> magic;                // 0x00 kMagic
  std::atomic<uint32_t> version;              // 0x04 kVersion
  std::atomic<uint64_t> capacity_blocks;      // 0x08 logical blocks on the disk
  std::atomic<uint32_t> block_size;           // 0x10 logical block size in bytes: 512 or 4096
  std::atomic<uint32_t> max_queue_depth;      // 0x14 largest accepted queue_depth
  std::atomic<uint32_t> max_transfer_blocks;  // 0x18 largest num_blocks of a read/write
  std::atomic<uint32_t> tag_limit;            // 0x1C tags must be < tag_limit
  std::atomic<uint32_t> features;             // 0x20 kFeature* bits
  std::atomic<uint32_t> status;               // 0x24 kStatus* bits (device)
  std::atomic<uint64_t> dma_size;             // 0x28 bytes in the DMA pool

  // ---- configuration (driver) ----
  std::atomic<uint32_t> control;      // 0x30 kControl* bits; other bits ignored
  std::atomic<uint32_t> write_cache;  // 0x34 kWriteCache* bits; power-on: enabled
  std::atomic<uint64_t> sq_offset;    // 0x38 DMA-pool offset of the SQ (read at enable)
  std::atomic<uint64_t> cq_offset;    // 0x40 DMA-pool offset of the CQ (read at enable)
  std::atomic<uint32_t> queue_depth;  // 0x48 entries in the SQ and in the CQ (read at enable)
  std::atomic<uint32_t> reserved0;    // 0x4C

  // ---- queue pointers ----
  std::atomic<uint32_t> sq_tail;  // 0x50 driver: next SQ index it will fill
  std::atomic<uint32_t> sq_head;  // 0x54 device: next SQ index it will consume
  std::atomic<uint32_t> cq_tail;  // 0x58 device: next CQ index it will fill
  std::atomic<uint32_t> cq_head;  // 0x5C driver: next CQ index it will consume
  // doorbell_wanted: the device sets it before it sleeps and clears it when
  // it wakes; a driver that overwrites it only risks not waking the device.
  std::atomic<uint32_t> doorbell_wanted;  // 0x60 device: 1 while it sleeps (ring), 0 while polling

  // ---- interrupts ----
  // int_cause: the device sets bits (fetch_or) and signals the interrupt
  // eventfd only when a bit goes from clear to set and is not masked; the
  // driver acknowledges by clearing bits (fetch_and). A cause that stays set
  // raises no further interrupt (event suppression).
  std::atomic<uint32_t> int_cause;  // 0x64 device sets, driver clears
  // int_mask: a set bit masks that cause (power-on and after reset: all
  // masked). Unmasking does not signal a cause already pending: check
  // int_cause after unmasking.
  std::atomic<uint32_t> int_mask;  // 0x68 driver

  std::atomic<uint32_t> reserved1;  // 0x6C

  // ---- host memory (device) ----
  // Bytes of host memory the host mapped for the device's DMA (its data
  // pool; 0: none). A command with kCommandHostMemory set names its buffer
  // by an offset in that memory instead of in the DMA pool.
  std::atomic<uint64_t> host_memory_size;  // 0x70
};

static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(sizeof(DiskRegisters) == 0x78);
static_assert(sizeof(DiskRegisters) <= kRegisterWindowSize);
static_assert(__builtin_offsetof(DiskRegisters, capacity_blocks) == 0x08);
static_assert(__builtin_offsetof(DiskRegisters, dma_size) == 0x28);
static_assert(__builtin_offsetof(DiskRegisters, control) == 0x30);
static_assert(__builtin_offsetof(DiskRegisters, sq_offset) == 0x38);
static_assert(__builtin_offsetof(DiskRegisters, queue_depth) == 0x48);
static_assert(__builtin_offsetof(DiskRegisters, sq_tail) == 0x50);
static_assert(__builtin_offsetof(DiskRegisters, doorbell_wanted) == 0x60);
static_assert(__builtin_offsetof(DiskRegisters, int_cause) == 0x64);
static_assert(__builtin_offsetof(DiskRegisters, int_mask) == 0x68);
static_assert(__builtin_offsetof(DiskRegisters, host_memory_size) == 0x70);

// DiskCommand flags bits.
// The buffer is in the host memory mapped for the device (host_memory_size),
// not in the DMA pool: the device reads and writes the payload in place.
inline constexpr uint8_t kCommandHostMemory = 1u << 0;

// Command opcodes.
enum class Opcode : uint8_t {
  kRead = 1,      // blocks [lba, lba+num_blocks) → buffer; sees the write cache first
  kWrite = 2,     // buffer → blocks; with the cache on, held in the volatile cache
  kFlush = 3,     // completes after every write completed before it is on the image
  kWriteFua = 4,  // buffer → blocks, on the image before completion
  kDiscard = 5,   // blocks read as zeros afterwards; no buffer
  kIdentify = 6,  // DiskIdentify → buffer (buffer_length >= sizeof(DiskIdentify))
};

// One submission-queue entry, 64 bytes. The driver fills it, then publishes it
// with the sq_tail store. Fields not used by an opcode are ignored.
struct DiskCommand {
  uint8_t opcode;          // 0x00 Opcode
  uint8_t flags;           // 0x01 kCommand* bits; others reserved, 0
  uint16_t tag;            // 0x02 driver's id: < tag_limit, unique among outstanding commands
  uint32_t num_blocks;     // 0x04 read/write: 1..max_transfer_blocks; discard: >= 1
  uint64_t lba;            // 0x08 first logical block
  uint64_t buffer_offset;  // 0x10 offset of the data in the DMA pool, or in host memory
                           //      with kCommandHostMemory (kBufferAlignment-aligned)
  uint64_t buffer_length;  // 0x18 read/write: num_blocks * block_size exactly
  uint64_t user_data;      // 0x20 echoed in the completion
  uint8_t reserved[24];    // 0x28
};
static_assert(sizeof(DiskCommand) == 64);

// Completion status codes.
enum class Status : uint16_t {
  kOk = 0,
  kInvalidOpcode = 1,      // unknown opcode
  kInvalidTag = 2,         // tag >= tag_limit
  kDuplicateTag = 3,       // tag of a command still outstanding (its completion not consumed)
  kLbaOutOfRange = 4,      // [lba, lba+num_blocks) not inside the capacity
  kInvalidBlockCount = 5,  // num_blocks 0 or above max_transfer_blocks
  kInvalidBuffer = 6,      // buffer outside the DMA pool, or the wrong length
  kMisaligned = 7,         // buffer_offset not kBufferAlignment-aligned
  kIoError = 8,            // the backing image failed
  kNoDevice = 9,           // the disk was hot-unplugged
};

// One completion-queue entry, 16 bytes. A command is "outstanding" from the
// moment the device consumes it until the driver consumes (moves cq_head
// past) its completion; only then may its tag be reused. Completions of
// commands consumed together may be posted in any order.
struct DiskCompletion {
  uint16_t tag;        // 0x00 the command's tag (as submitted, even if refused)
  uint16_t status;     // 0x02 Status
  uint32_t reserved;   // 0x04
  uint64_t user_data;  // 0x08 the command's user_data
};
static_assert(sizeof(DiskCompletion) == 16);

// What kIdentify writes into the buffer, 128 bytes.
struct DiskIdentify {
  uint32_t magic;                // kMagic
  uint32_t version;              // kVersion
  uint64_t capacity_blocks;      // as the register
  uint32_t block_size;           // as the register
  uint32_t max_queue_depth;      // as the register
  uint32_t max_transfer_blocks;  // as the register
  uint32_t tag_limit;            // as the register
  uint32_t features;             // as the register
  uint32_t write_cache_enabled;  // 1 if the volatile write cache is in effect
  uint64_t cache_bytes;          // size of the volatile write cache
  char serial[24];               // NUL-padded
  char model[40];                // NUL-padded
  uint8_t reserved[16];          // 0
};
static_assert(sizeof(DiskIdentify) == 128);

}  // namespace umbra::hw::disk
