#include "runtime/hw/disk/write_cache.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include "runtime/hw/disk/image_file.h"

namespace umbra::hw::disk {
namespace {

class WriteCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/umbra-cache-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    auto image = ImageFile::Open(dir_ + "/img", 512, 4096);
    ASSERT_TRUE(image.has_value()) << image.error().ToString();
    image_ = std::move(*image);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static void Stamp(std::byte* block, uint64_t lba) {
    std::memset(block, static_cast<int>(lba & 0xFF), 512);
    std::memcpy(block, &lba, sizeof lba);
  }
  uint64_t StampAt(uint64_t lba) {
    std::byte block[512];
    EXPECT_TRUE(image_->Read(block, lba * 512).has_value());
    uint64_t v;
    std::memcpy(&v, block, sizeof v);
    return v;
  }

  std::string dir_;
  std::unique_ptr<ImageFile> image_;
};

TEST_F(WriteCacheTest, PutFindOverwrite) {
  auto cache = *WriteCache::Create(512, 8);
  EXPECT_EQ(cache->Find(3), nullptr);
  Stamp(cache->Put(3), 3);
  std::byte* first = cache->Find(3);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(cache->Put(3), first);  // overwriting uses the same slot
  EXPECT_EQ(cache->dirty_blocks(), 1u);
  EXPECT_TRUE(cache->HasRoom(7));
  EXPECT_FALSE(cache->HasRoom(8));
}

TEST_F(WriteCacheTest, WriteBackWritesEveryBlockAndEmpties) {
  auto cache = *WriteCache::Create(512, 64);
  // Out of order, with runs and gaps, including colliding hash buckets.
  const uint64_t lbas[] = {40, 7, 8, 9, 1000, 3, 41, 2048, 10, 4095};
  for (uint64_t lba : lbas) Stamp(cache->Put(lba), lba);
  auto written = cache->WriteBack(*image_);
  ASSERT_TRUE(written.has_value());
  EXPECT_EQ(*written, std::size(lbas));
  EXPECT_TRUE(cache->empty());
  for (uint64_t lba : lbas) {
    EXPECT_EQ(StampAt(lba), lba);
    EXPECT_EQ(cache->Find(lba), nullptr);
  }
  EXPECT_EQ(StampAt(11), 0u);
}

TEST_F(WriteCacheTest, DropForgetsWithoutWriting) {
  auto cache = *WriteCache::Create(512, 4);
  Stamp(cache->Put(5), 5);
  cache->Drop();
  EXPECT_TRUE(cache->empty());
  EXPECT_EQ(cache->Find(5), nullptr);
  EXPECT_EQ(*cache->WriteBack(*image_), 0u);
  EXPECT_EQ(StampAt(5), 0u);
  // Reusable after a drop.
  Stamp(cache->Put(6), 6);
  EXPECT_NE(cache->Find(6), nullptr);
}

TEST_F(WriteCacheTest, ForEachInRangeVisitsOnlyTheRange) {
  auto cache = *WriteCache::Create(512, 16);
  for (uint64_t lba : {1, 5, 6, 9, 30}) Stamp(cache->Put(lba), lba);
  std::vector<uint64_t> seen;
  cache->ForEachInRange(5, 5, [&](uint64_t lba, std::byte*) { seen.push_back(lba); });  // lookup path
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<uint64_t>{5, 6, 9}));
  seen.clear();
  cache->ForEachInRange(0, 100, [&](uint64_t lba, std::byte*) { seen.push_back(lba); });  // scan path
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 5, 6, 9, 30}));
}

TEST_F(WriteCacheTest, LongRunsAreSplitIntoSeveralVectoredWrites) {
  auto cache = *WriteCache::Create(512, 3000);
  for (uint64_t lba = 0; lba < 3000; ++lba) Stamp(cache->Put(2999 - lba), 2999 - lba);
  ASSERT_EQ(*cache->WriteBack(*image_), 3000u);
  for (uint64_t lba = 0; lba < 3000; lba += 97) EXPECT_EQ(StampAt(lba), lba);
  EXPECT_EQ(StampAt(2999), 2999u);
}

TEST_F(WriteCacheTest, WriteBackOldestDestagesInTheOrderBlocksBecameDirty) {
  auto cache = *WriteCache::Create(512, 8);
  for (uint64_t lba : {70, 3, 50, 9, 21}) Stamp(cache->Put(lba), lba);
  Stamp(cache->Put(3), 3);  // rewriting keeps its place: dirty since the first write
  ASSERT_EQ(*cache->WriteBackOldest(*image_, 2), 2u);
  EXPECT_EQ(StampAt(70), 70u);
  EXPECT_EQ(StampAt(3), 3u);
  EXPECT_EQ(StampAt(50), 0u);  // still only cached
  EXPECT_EQ(cache->dirty_blocks(), 3u);
  EXPECT_EQ(cache->Find(70), nullptr);
  EXPECT_EQ(cache->Find(3), nullptr);
  for (uint64_t lba : {50, 9, 21}) EXPECT_NE(cache->Find(lba), nullptr) << lba;
  // The freed slots are reused: the ring wraps.
  for (uint64_t lba : {100, 101, 102, 103, 104}) Stamp(cache->Put(lba), lba);
  EXPECT_FALSE(cache->HasRoom(1));
  std::vector<uint64_t> seen;
  cache->ForEachInRange(0, 1000, [&](uint64_t lba, std::byte*) { seen.push_back(lba); });
  EXPECT_EQ(seen, (std::vector<uint64_t>{50, 9, 21, 100, 101, 102, 103, 104}));  // oldest first
  ASSERT_EQ(*cache->WriteBackOldest(*image_, 100), 8u);                          // more than it holds: all
  EXPECT_TRUE(cache->empty());
  EXPECT_EQ(StampAt(104), 104u);
}

// Random puts, discards (zeroing), drops and write-backs (whole and oldest
// first) against a reference model of the cache and the image.
TEST_F(WriteCacheTest, MatchesAReferenceModel) {
  auto cache = *WriteCache::Create(512, 64);
  std::map<uint64_t, uint64_t> cached, image;  // lba → stamp
  std::vector<uint64_t> order;                 // cached LBAs, dirty longest first
  std::mt19937_64 rng(3);
  for (int step = 0; step < 20000; ++step) {
    const uint64_t lba = rng() % 256;
    switch (rng() % 20) {
      case 0:
        cache->Drop();
        cached.clear();
        order.clear();
        break;
      case 1:
        ASSERT_EQ(*cache->WriteBack(*image_), cached.size());
        for (auto [l, v] : cached) image[l] = v;
        cached.clear();
        order.clear();
        break;
      case 3:
      case 4: {
        const uint64_t count = rng() % 24;
        ASSERT_EQ(*cache->WriteBackOldest(*image_, count), std::min<uint64_t>(count, order.size()));
        for (uint64_t i = 0; i < count && !order.empty(); ++i) {
          image[order.front()] = cached[order.front()];
          cached.erase(order.front());
          order.erase(order.begin());
        }
        break;
      }
      case 2: {
        const uint64_t count = 1 + rng() % 80;
        cache->ForEachInRange(lba, count, [&](uint64_t l, std::byte* data) {
          std::memset(data, 0, 512);
          cached[l] = 0;
        });
        break;
      }
      default: {
        if (!cache->HasRoom(1) && cached.count(lba) == 0) break;
        const uint64_t stamp = (uint64_t(step) << 8) | 1;
        std::memcpy(cache->Put(lba), &stamp, sizeof stamp);
        if (cached.count(lba) == 0) order.push_back(lba);
        cached[lba] = stamp;
      }
    }
    ASSERT_EQ(cache->dirty_blocks(), cached.size());
    for (uint64_t l : order) ASSERT_NE(cache->Find(l), nullptr) << "step " << step << " lba " << l;
    const uint64_t probe = rng() % 256;
    const std::byte* data = cache->Find(probe);
    ASSERT_EQ(data != nullptr, cached.count(probe) == 1) << "step " << step;
    if (data != nullptr) {
      uint64_t v;
      std::memcpy(&v, data, sizeof v);
      ASSERT_EQ(v, cached[probe]);
    }
  }
  ASSERT_TRUE(cache->WriteBack(*image_).has_value());
  for (auto [l, v] : cached) image[l] = v;
  for (auto [l, v] : image) EXPECT_EQ(StampAt(l), v) << l;
}

TEST(ImageFileTest, RejectsBadImages) {
  char dir[] = "/tmp/umbra-image-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string base = dir;
  EXPECT_EQ(ImageFile::Open(base + "/missing", 512, 0).error().code, Errc::kNotFound);
  EXPECT_EQ(ImageFile::Open(base + "/x", 1000, 4).error().code, Errc::kInvalidArgument);
  ASSERT_TRUE(ImageFile::Open(base + "/odd", 512, 3).has_value());
  std::filesystem::resize_file(base + "/odd", 1000);
  EXPECT_EQ(ImageFile::Open(base + "/odd", 512, 0).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(ImageFile::Open(base, 512, 0).error().code, Errc::kIo);  // a directory
  std::filesystem::remove_all(base);
}

}  // namespace
}  // namespace umbra::hw::disk
