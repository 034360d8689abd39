// The ops of the misbehaving test driver (faulty_driver.cc), one per way a
// buggy or hostile driver can hurt its host; the supervisor tests send them.
#pragma once

#include <cstdint>

namespace umbra::testing {

enum FaultOp : uint16_t {
  kSegfault = 10,
  kAbort = 11,
  kSelfKill = 12,
  kExit = 13,
  kHang = 14,
  kForgeId = 15,
  kOverlongCompletion = 16,
  kCorruptRing = 17,
  kGarbageDatagram = 18,
  kOversizedDatagram = 19,
  kLogFlood = 20,
  kDuplicateCompletion = 21,
  kUnknownReply = 22,
  kSelfStop = 23,
  kBadStatus = 24,
};

}  // namespace umbra::testing
