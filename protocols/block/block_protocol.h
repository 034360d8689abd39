// The block class protocol: what travels between the block shadow and any
// block driver over the data and control paths. Standard library only, so a
// driver, the shadow and tests share it without pulling either side in.
//
// Data path (runtime::Request / ipc::Descriptor):
//   op      kRead, kWrite, kWriteFua, kFlush, kDiscard
//   arg     the first logical block (LBA)
//   offset  the payload's buffer in the data pool (read: filled by the driver)
//   length  bytes = blocks * block_size (read/write/FUA: also the payload size;
//           discard: the extent only, no payload; flush: 0)
//   A write completes once the device accepted it (with the write cache on
//   it is then volatile until a flush completes); a FUA write, and any write
//   with the cache off, completes once it is durable; a flush completes once
//   every write completed before it was submitted is durable.
//   Completion status: 0, kInvalidArgument (bad extent or buffer, never sent
//   by a correct shadow), kIo (the medium failed), kNoDevice (hot-unplugged),
//   kProtocol (the device refused a command: a driver bug).
// Control path (DriverHost::Call):
//   kIdentify       reply EncodeGeometry(the disk's geometry, from the device)
//   kSetWriteCache  body "0" or "1"; returns once the device reports the mode
//                   in effect (turning the cache off writes it back first)
//   kSetQueueDepth  body decimal 1..max_queue_depth: commands the driver keeps
//                   outstanding at the device (the rest wait in the driver)
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace umbra::block {

enum Op : uint16_t { kRead = 1, kWrite = 2, kFlush = 3, kWriteFua = 4, kDiscard = 5 };
enum Method : uint32_t { kIdentify = 1, kSetWriteCache = 2, kSetQueueDepth = 3 };

// Largest queue depth any block driver accepts from kSetQueueDepth.
inline constexpr uint32_t kMaxQueueDepth = 256;

// What kIdentify reports.
struct Geometry {
  uint64_t capacity_blocks = 0;
  uint32_t block_size = 0;
  uint32_t max_io_bytes = 0;     // largest read/write one request may carry
  uint32_t max_queue_depth = 0;  // largest kSetQueueDepth value
  bool write_cache = false;      // the volatile write cache is in effect
  bool operator==(const Geometry&) const = default;
};

inline const char* OpName(uint16_t op) {
  switch (op) {
    case kRead: return "read";
    case kWrite: return "write";
    case kFlush: return "flush";
    case kWriteFua: return "write-fua";
    case kDiscard: return "discard";
    default: return "?";
  }
}

// "capacity,block_size,max_io,max_depth,cache" in decimal.
inline std::string EncodeGeometry(const Geometry& g) {
  return std::to_string(g.capacity_blocks) + "," + std::to_string(g.block_size) + "," + std::to_string(g.max_io_bytes) +
         "," + std::to_string(g.max_queue_depth) + "," + (g.write_cache ? "1" : "0");
}

// The inverse of EncodeGeometry; nullopt on anything malformed or inconsistent.
inline std::optional<Geometry> DecodeGeometry(std::string_view text) {
  uint64_t v[5] = {};
  for (int i = 0; i < 5; ++i) {
    const size_t comma = text.find(',');
    const std::string_view f = text.substr(0, comma);
    auto [end, ec] = std::from_chars(f.data(), f.data() + f.size(), v[i]);
    if (f.empty() || ec != std::errc() || end != f.data() + f.size()) return std::nullopt;
    if ((comma == std::string_view::npos) != (i == 4)) return std::nullopt;
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
  }
  Geometry g{.capacity_blocks = v[0],
             .block_size = static_cast<uint32_t>(v[1]),
             .max_io_bytes = static_cast<uint32_t>(v[2]),
             .max_queue_depth = static_cast<uint32_t>(v[3]),
             .write_cache = v[4] != 0};
  if (g.block_size != 512 && g.block_size != 4096) return std::nullopt;
  if (g.capacity_blocks == 0 || g.max_io_bytes < g.block_size || g.max_io_bytes % g.block_size != 0) {
    return std::nullopt;
  }
  if (g.max_queue_depth == 0 || g.max_queue_depth > kMaxQueueDepth || v[4] > 1) return std::nullopt;
  return g;
}

}  // namespace umbra::block
