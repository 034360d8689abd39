#include "shadows/slot_table.h"

#include <gtest/gtest.h>

#include "runtime/supervisor/cookie.h"

namespace umbra::shadows {
namespace {

TEST(SlotTable, InsertFindEraseAndCapacity) {
  SlotTable<int> t(2);
  auto a = t.Insert(1), b = t.Insert(2);
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(t.Insert(3).has_value()) << "full";
  EXPECT_EQ(*t.Find(*a), 1);
  EXPECT_TRUE(t.Erase(*a));
  EXPECT_EQ(t.Find(*a), nullptr);
  EXPECT_FALSE(t.Erase(*a)) << "erased twice";
  EXPECT_TRUE(t.Insert(4).has_value());
}

TEST(SlotTable, StaleCookieNeverMatchesAReusedSlot) {
  SlotTable<int> t(1);
  auto a = t.Insert(1);
  t.Erase(*a);
  auto b = t.Insert(2);
  ASSERT_EQ(static_cast<uint32_t>(*a), static_cast<uint32_t>(*b)) << "same slot";
  EXPECT_EQ(t.Find(*a), nullptr);
  EXPECT_EQ(*t.Find(*b), 2);
  EXPECT_EQ(t.Find(uint64_t{1} << 40 | 7), nullptr) << "slot out of range";
}

// The shadows' tables use the same encoding: a cookie they hand out decodes
// to the slot it names, and the host's stale-id rule holds for them too.
TEST(SlotTable, CookiesAreRequestCookies) {
  SlotTable<int> table(4);
  const uint64_t a = *table.Insert(10);
  const runtime::RequestCookie ca = runtime::RequestCookie::Decode(a);
  ASSERT_TRUE(table.Erase(a));
  const uint64_t b = *table.Insert(20);
  const runtime::RequestCookie cb = runtime::RequestCookie::Decode(b);
  EXPECT_EQ(ca.index, cb.index) << "the freed slot is reused";
  EXPECT_EQ(cb.tag, runtime::NextGeneration(ca.tag));
  EXPECT_EQ(table.Find(a), nullptr) << "stale generation";
  EXPECT_EQ(*table.Find(b), 20);
}

}  // namespace
}  // namespace umbra::shadows
