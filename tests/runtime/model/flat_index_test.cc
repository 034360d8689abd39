#include "runtime/model/flat_index.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <string>

namespace umbra::model {
namespace {

struct Item {
  std::string name;
};

struct ByName {
  using Key = std::string_view;
  static Key KeyOf(const std::unique_ptr<Item>& i) { return i->name; }
  static uint64_t Hash(Key k) { return std::hash<Key>{}(k); }
};

// Every key hashes alike: one long probe run, where backward-shift erasure
// has the most to get wrong.
struct Colliding {
  using Key = std::string_view;
  static Key KeyOf(const std::unique_ptr<Item>& i) { return i->name; }
  static uint64_t Hash(Key k) { return k.size() % 2; }
};

template <class Traits>
void MatchesAMapUnderRandomInsertsAndErases(int keys) {
  FlatIndex<std::unique_ptr<Item>, Traits> index;
  std::map<std::string, bool> present;
  std::mt19937 rng(7);
  for (int step = 0; step < 20000; ++step) {
    std::string k = "k" + std::to_string(rng() % keys);
    if (present[k]) {
      auto out = index.Erase(k);
      ASSERT_TRUE(out) << k;
      EXPECT_EQ(out->name, k);
      present[k] = false;
    } else {
      index.Insert(std::make_unique<Item>(Item{k}));
      present[k] = true;
    }
    if (step % 97 != 0) continue;
    size_t n = 0;
    for (const auto& [key, in] : present) {
      Item* found = index.Find(key);
      ASSERT_EQ(found != nullptr, in) << key << " at step " << step;
      if (found) {
        EXPECT_EQ(found->name, key);
      }
      n += in;
    }
    ASSERT_EQ(index.size(), n);
  }
}

TEST(FlatIndex, MatchesAMapUnderRandomInsertsAndErases) { MatchesAMapUnderRandomInsertsAndErases<ByName>(500); }

TEST(FlatIndex, ErasingFromALongCollisionRunKeepsTheRestFindable) {
  MatchesAMapUnderRandomInsertsAndErases<Colliding>(60);
}

TEST(FlatIndex, EraseReturnsTheHandleAndMissingKeysAreEmpty) {
  FlatIndex<std::unique_ptr<Item>, ByName> index;
  EXPECT_EQ(index.Find("a"), nullptr);
  EXPECT_FALSE(index.Erase("a"));
  index.Insert(std::make_unique<Item>(Item{"a"}));
  Item* a = index.Find("a");
  auto out = index.Erase("a");
  EXPECT_EQ(out.get(), a);
  EXPECT_TRUE(index.empty());
  int seen = 0;
  index.ForEach([&](const std::unique_ptr<Item>&) { ++seen; });
  EXPECT_EQ(seen, 0);
}

}  // namespace
}  // namespace umbra::model
