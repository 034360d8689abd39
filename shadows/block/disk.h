// block::Disk: the block-device class interface applications program against.
//
// Fixed-size logical blocks, read and written by LBA, with the usual write
// cache contract: a completed Write may still be volatile until a Flush
// completes; a WriteFua, or any write with the write cache off, is durable
// when it completes. Implemented by BlockShadow (a driver process behind a
// shadow that hides its crashes) and by the benchmark's baselines.
//
//   Disk& disk = *shadow;
//   std::vector<std::byte> block(disk.block_size());
//   UMBRA_TRY(disk.Write(7, block));
//   UMBRA_TRY(disk.Flush());
//   UMBRA_TRY(disk.Read(7, block));
//
// Asynchronous use (queue depth > 1): Submit up to as many requests as the
// disk accepts (Submit blocks while it is full: back-pressure, not an error),
// then Reap their completions in any order, matched by user_data:
//
//   disk.Submit({.op = kRead, .lba = 9, .blocks = 1, .data = buf, .user_data = 1}, timeout);
//   IoDone done[32];  size_t n = *disk.Reap(done, 1, timeout);
//
// Thread safety: every method may be called from any thread, unless an
// implementation says otherwise (the benchmark baselines are single-threaded).
// A write's data is copied at Submit; a read's buffer must stay valid until
// its completion was reaped (or its synchronous call returned).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/result.h"
#include "protocols/block/block_protocol.h"

namespace umbra::shadows::block {

using umbra::block::Geometry;
using umbra::block::Op;

inline constexpr int64_t kDefaultIoTimeoutNs = 60'000'000'000;

// One request. `blocks` <= max_io_blocks(); `data` holds blocks * block_size
// bytes for reads and writes and is unused by flush and discard.
struct Io {
  uint16_t op = umbra::block::kRead;
  uint64_t lba = 0;
  uint32_t blocks = 0;
  std::byte* data = nullptr;
  uint64_t user_data = 0;
};

// One completion: status 0, or the Errc value of the failure.
struct IoDone {
  uint64_t user_data = 0;
  int32_t status = 0;
};

class Disk {
 public:
  virtual ~Disk() = default;

  virtual Geometry geometry() const = 0;
  uint64_t capacity_blocks() const { return geometry().capacity_blocks; }
  uint32_t block_size() const { return geometry().block_size; }
  // The largest `blocks` one Io may carry.
  virtual uint32_t max_io_blocks() const = 0;

  // Queues one request; blocks while the disk is full (kTimeout when
  // `timeout_ns` passes first). Fails at once on a malformed request, and with
  // kNoDevice / kDeviceFailed once the disk is gone.
  virtual Result<void> Submit(const Io& io, int64_t timeout_ns) = 0;
  // Waits until at least `min` completions of submitted requests are
  // available (or the timeout) and moves up to out.size() of them to `out`.
  virtual Result<size_t> Reap(std::span<IoDone> out, size_t min, int64_t timeout_ns) = 0;
  // Runs requests synchronously: submits them all, waits for all; the first
  // error wins. Requests larger than max_io_blocks are split.
  virtual Result<void> Run(std::span<const Io> ios, int64_t timeout_ns) = 0;

  // Turns the volatile write cache on or off (off writes it back first).
  virtual Result<void> SetWriteCache(bool on) = 0;

  // Synchronous helpers over Run.
  Result<void> Read(uint64_t lba, std::span<std::byte> out, int64_t timeout_ns = kDefaultIoTimeoutNs) {
    return Transfer(umbra::block::kRead, lba, out, timeout_ns);
  }
  Result<void> Write(uint64_t lba, std::span<const std::byte> in, int64_t timeout_ns = kDefaultIoTimeoutNs) {
    return Transfer(umbra::block::kWrite, lba, {const_cast<std::byte*>(in.data()), in.size()}, timeout_ns);
  }
  Result<void> WriteFua(uint64_t lba, std::span<const std::byte> in, int64_t timeout_ns = kDefaultIoTimeoutNs) {
    return Transfer(umbra::block::kWriteFua, lba, {const_cast<std::byte*>(in.data()), in.size()}, timeout_ns);
  }
  Result<void> Flush(int64_t timeout_ns = kDefaultIoTimeoutNs) {
    const Io io{.op = umbra::block::kFlush};
    return Run({&io, 1}, timeout_ns);
  }
  Result<void> Discard(uint64_t lba, uint32_t blocks, int64_t timeout_ns = kDefaultIoTimeoutNs) {
    const Io io{.op = umbra::block::kDiscard, .lba = lba, .blocks = blocks};
    return Run({&io, 1}, timeout_ns);
  }

 private:
  Result<void> Transfer(uint16_t op, uint64_t lba, std::span<std::byte> data, int64_t timeout_ns) {
    const uint32_t bs = block_size();
    if (bs == 0 || data.empty() || data.size() % bs != 0) {
      return Fail(Errc::kInvalidArgument,
                  "transfer of " + std::to_string(data.size()) + " bytes is not a whole number of blocks");
    }
    const Io io{.op = op, .lba = lba, .blocks = static_cast<uint32_t>(data.size() / bs), .data = data.data()};
    return Run({&io, 1}, timeout_ns);
  }
};

}  // namespace umbra::shadows::block
