#include "shadows/config_log.h"

#include <gtest/gtest.h>

namespace umbra::shadows {
namespace {

TEST(ConfigLog, KeepsOnlyTheLatestValuePerSetting) {
  ConfigLog log;
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(log.Set("mtu", 2, 7, std::to_string(i)).has_value());
  EXPECT_EQ(log.size(), 1u);
  EXPECT_EQ(*log.Get("mtu"), "9999");
}

TEST(ConfigLog, ReplaysByRankThenByFirstArrival) {
  ConfigLog log;
  ASSERT_TRUE(log.Set("up", 9, 1, "1").has_value());
  ASSERT_TRUE(log.Set("mcast", 4, 2, "a").has_value());
  ASSERT_TRUE(log.Set("mac", 1, 3, "m").has_value());
  ASSERT_TRUE(log.Set("promisc", 4, 4, "1").has_value());
  ASSERT_TRUE(log.Set("mcast", 4, 2, "b").has_value());  // update keeps its place
  std::vector<std::string> order;
  for (const auto& e : log.InReplayOrder()) order.push_back(e.key + "=" + e.value);
  EXPECT_EQ(order, (std::vector<std::string>{"mac=m", "mcast=b", "promisc=1", "up=1"}));
}

TEST(ConfigLog, BoundedInKeysAndValueSize) {
  ConfigLog log({.max_entries = 2, .max_value_bytes = 4});
  ASSERT_TRUE(log.Set("a", 0, 0, "1").has_value());
  ASSERT_TRUE(log.Set("b", 0, 0, "1").has_value());
  auto full = log.Set("c", 0, 0, "1");
  ASSERT_FALSE(full.has_value());
  EXPECT_NE(full.error().message.find("full"), std::string::npos);
  EXPECT_TRUE(log.Set("a", 0, 0, "2222").has_value()) << "updating an existing key is fine";
  auto big = log.Set("a", 0, 0, "55555");
  ASSERT_FALSE(big.has_value());
  EXPECT_NE(big.error().message.find("'a'"), std::string::npos);
  EXPECT_EQ(*log.Get("a"), "2222");
}

}  // namespace
}  // namespace umbra::shadows
