// The echo class protocol: what travels between the echo shadow and the echo
// driver. Standard library only, so the driver, the shadow and tests share it
// without pulling either side in.
//
// Data path (runtime::Request / ipc::Descriptor):
//   kEcho  offset/length: a payload; completes with the same bytes, each
//          complemented, so a test can tell the driver really handled it.
//   kNop   completes at once, touching nothing.
// Control path (DriverHost::Call):
//   kSetTag    body: the tag to keep
//   kGetTag    reply: the tag
//   kGetCount  reply: the decimal count of requests this instance served
#pragma once

#include <cstdint>

namespace umbra::echo {

enum Op : uint16_t { kEcho = 1, kNop = 2 };
enum Method : uint32_t { kSetTag = 1, kGetTag = 2, kGetCount = 3 };

}  // namespace umbra::echo
