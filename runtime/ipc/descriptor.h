// Descriptor: the fixed-size record of the data path (32 bytes).
//
// A request names its payload by offset and length inside the device's buffer
// pool; the completion echoes the id with a status and the length produced.
// The meaning of `op`, `flags` and `arg` belongs to the device class.
#pragma once

#include <cstdint>

namespace umbra::ipc {

struct Descriptor {
  uint64_t id;      // correlation id, chosen by the host, unique while in flight
  uint16_t op;      // class-specific operation
  uint16_t flags;   // class-specific
  int32_t status;   // completion: 0 ok, otherwise an Errc value (negated on the wire)
  uint32_t offset;  // payload offset inside the buffer pool
  uint32_t length;  // payload length
  uint64_t arg;     // class-specific (an LBA, a frame count, a timestamp ...)
};
static_assert(sizeof(Descriptor) == 32);

}  // namespace umbra::ipc
