#include "runtime/supervisor/cookie.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace umbra::runtime {
namespace {

TEST(RequestCookie, RoundTripsIndexAndTag) {
  for (const RequestCookie c :
       {RequestCookie{.index = 0, .tag = 1}, RequestCookie{.index = 7, .tag = 3},
        RequestCookie{.index = UINT32_MAX, .tag = UINT32_MAX}, RequestCookie{.index = 4096, .tag = 0x8000'0001}}) {
    EXPECT_EQ(RequestCookie::Decode(c.Encode()), c) << c.index << "/" << c.tag;
  }
  EXPECT_EQ(RequestCookie::Decode(0x0000'0005'0000'0009ull), (RequestCookie{.index = 9, .tag = 5}));
}

TEST(RequestCookie, StaleGenerationOfTheSameSlotIsToldApart) {
  const uint32_t first = NextGeneration(0);
  const uint32_t second = NextGeneration(first);
  const uint64_t stale = RequestCookie{.index = 3, .tag = first}.Encode();
  const uint64_t live = RequestCookie{.index = 3, .tag = second}.Encode();
  EXPECT_NE(stale, live);
  EXPECT_EQ(RequestCookie::Decode(stale).index, RequestCookie::Decode(live).index);
  EXPECT_NE(RequestCookie::Decode(stale).tag, RequestCookie::Decode(live).tag);
}

TEST(RequestCookie, GenerationsAreNeverZeroSoACookieNeverLooksFree) {
  EXPECT_EQ(NextGeneration(0), 1u);
  EXPECT_EQ(NextGeneration(UINT32_MAX), 1u) << "wraps past 0";
  EXPECT_NE((RequestCookie{.index = 0, .tag = NextGeneration(UINT32_MAX)}.Encode()), 0u);
}

}  // namespace
}  // namespace umbra::runtime
