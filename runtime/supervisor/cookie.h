// RequestCookie: the one encoding of a 64-bit request id or cookie, shared by
// the DriverHost (the ids it gives requests on the rings) and the shadows
// (the cookies they give the DriverHost, their SlotTables).
//
// The low half is an index (a slot in a table, or a buffer offset in the
// pool); the high half a tag that tells apart what the index alone cannot: a
// generation bumped each time a slot is reused (so a stale id never matches
// the slot's next request), a submission serial, or a kind (read, write).
//
//   const uint64_t id = RequestCookie{.index = slot, .tag = NextGeneration(gen)}.Encode();
//   const RequestCookie c = RequestCookie::Decode(id);   // c.index == slot
//
// Generations start at 1 and skip 0 when they wrap, so that an encoded
// cookie with a generation is never 0 (0 marks a free slot). A stale cookie
// matches a reused slot only after 2^32 reuses of that very slot.
#pragma once

#include <cstdint>

namespace umbra::runtime {

struct RequestCookie {
  uint32_t index = 0;  // a slot, or a buffer offset
  uint32_t tag = 0;    // a generation, a serial, or a kind

  constexpr uint64_t Encode() const { return (uint64_t{tag} << 32) | index; }
  static constexpr RequestCookie Decode(uint64_t cookie) {
    return RequestCookie{.index = static_cast<uint32_t>(cookie), .tag = static_cast<uint32_t>(cookie >> 32)};
  }
  friend constexpr bool operator==(RequestCookie, RequestCookie) = default;
};

// The generation after `g` for a slot being reused: never 0.
constexpr uint32_t NextGeneration(uint32_t g) { return g == UINT32_MAX ? 1 : g + 1; }

}  // namespace umbra::runtime
