#include "preload/pointer_table.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace dw {
namespace {

TEST(PointerTableTest, InsertEraseRoundTrip) {
  PointerTable table;
  ASSERT_TRUE(table.Init(16));
  ASSERT_TRUE(table.Insert(0x1000, {7, 48}));
  PointerTable::Entry entry;
  ASSERT_TRUE(table.Erase(0x1000, &entry));
  EXPECT_EQ(entry.site, 7u);
  EXPECT_EQ(entry.size, 48u);
  EXPECT_FALSE(table.Erase(0x1000, &entry));
}

TEST(PointerTableTest, GrowsWhenBucketsFill) {
  PointerTable table;
  ASSERT_TRUE(table.Init(2));  // 16 slots on the first level
  for (uintptr_t i = 1; i <= 10000; ++i) ASSERT_TRUE(table.Insert(i * 16, {1, i}));
  EXPECT_GT(table.levels(), 1u);
  EXPECT_EQ(table.CountForTesting(), 10000u);
  for (uintptr_t i = 1; i <= 10000; ++i) {
    PointerTable::Entry entry;
    ASSERT_TRUE(table.Erase(i * 16, &entry));
    ASSERT_EQ(entry.size, i);
  }
  EXPECT_EQ(table.CountForTesting(), 0u);
}

TEST(PointerTableTest, ChurnNeverFillsTheTable) {
  // Erased slots are reusable at once (no tombstones), so a million insert/erase pairs over a
  // small working set never need a second level.
  PointerTable table;
  ASSERT_TRUE(table.Init(256));
  for (uintptr_t round = 0; round < 1000000; ++round) {
    uintptr_t key = ((round * 2654435761u) % 512 + 1) * 32;
    PointerTable::Entry entry;
    ASSERT_TRUE(table.Insert(key, {1, 1}));
    ASSERT_TRUE(table.Erase(key, &entry));
  }
  EXPECT_EQ(table.levels(), 1u);
}

TEST(PointerTableTest, MoveRestoresOrReleases) {
  PointerTable table;
  ASSERT_TRUE(table.Init(16));
  ASSERT_TRUE(table.Insert(0x2000, {3, 100}));
  PointerTable::Entry entry;
  void* handle = table.BeginMove(0x2000, &entry);
  ASSERT_NE(handle, nullptr);
  EXPECT_EQ(entry.size, 100u);
  // While moving, the same address may be inserted again (freed and reused by another thread).
  ASSERT_TRUE(table.Insert(0x2000, {4, 8}));
  table.EndMove(handle, /*released=*/true);
  PointerTable::Entry left;
  ASSERT_TRUE(table.Erase(0x2000, &left));
  EXPECT_EQ(left.site, 4u);
  EXPECT_FALSE(table.Erase(0x2000, &left));

  ASSERT_TRUE(table.Insert(0x3000, {5, 10}));
  handle = table.BeginMove(0x3000, &entry);
  table.EndMove(handle, /*released=*/false);  // realloc failed: the old block stays
  ASSERT_TRUE(table.Erase(0x3000, &left));
  EXPECT_EQ(left.site, 5u);
}

TEST(PointerTableTest, ConcurrentInsertEraseLosesNothing) {
  PointerTable table;
  ASSERT_TRUE(table.Init(64));  // small, so threads also race to add levels
  constexpr int kThreads = 4;
  constexpr uintptr_t kKeys = 50000;
  std::vector<std::thread> threads;
  std::atomic<uint64_t> erased_sizes{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      uint64_t local = 0;
      for (uintptr_t i = 0; i < kKeys; ++i) {
        uintptr_t key = ((i * kThreads + t) + 1) * 16;
        ASSERT_TRUE(table.Insert(key, {static_cast<uint32_t>(t), i}));
        if (i % 3 == 0) {
          PointerTable::Entry entry;
          ASSERT_TRUE(table.Erase(key, &entry));
          local += entry.size;
        }
      }
      erased_sizes += local;
    });
  }
  for (auto& thread : threads) thread.join();
  uint64_t expected_erased = 0;
  size_t erased_count = 0;
  for (uintptr_t i = 0; i < kKeys; i += 3) {
    expected_erased += i;
    ++erased_count;
  }
  EXPECT_EQ(erased_sizes.load(), expected_erased * kThreads);
  EXPECT_EQ(table.CountForTesting(), (kKeys - erased_count) * kThreads);
}

TEST(PointerTableTest, InsertOfALiveKeyReplacesIt) {
  // A key left live by a missed free, in a table that has grown: inserting it again must find
  // it and replace it, not add a second entry.
  PointerTable table;
  ASSERT_TRUE(table.Init(2));
  for (uintptr_t i = 1; i <= 10000; ++i) ASSERT_TRUE(table.Insert((i + 0x10000) * 16, {2, i}));
  ASSERT_GT(table.levels(), 3u);
  const uintptr_t kStale = 0x7000;
  ASSERT_TRUE(table.Insert(kStale, {1, 10}));
  PointerTable::Entry replaced;
  ASSERT_EQ(table.Insert(kStale, {3, 30}, &replaced), PointerTable::InsertResult::kReplaced);
  EXPECT_EQ(replaced.site, 1u);
  EXPECT_EQ(replaced.size, 10u);
  EXPECT_EQ(table.CountForTesting(), 10001u);
  PointerTable::Entry erased;
  ASSERT_TRUE(table.Erase(kStale, &erased));
  EXPECT_EQ(erased.site, 3u);
  EXPECT_FALSE(table.Erase(kStale, &erased));
  // A key that is moving (realloc in flight) is not live under its own number: no replacement.
  ASSERT_TRUE(table.Insert(kStale, {4, 40}));
  PointerTable::Entry moving;
  void* handle = table.BeginMove(kStale, &moving);
  ASSERT_NE(handle, nullptr);
  EXPECT_EQ(table.Insert(kStale, {5, 50}, &replaced), PointerTable::InsertResult::kInserted);
  table.EndMove(handle, /*released=*/true);
  ASSERT_TRUE(table.Erase(kStale, &erased));
  EXPECT_EQ(erased.site, 5u);
}

TEST(PointerTableTest, ReleaseMemoryUnmapsEveryLevel) {
  PointerTable table;
  ASSERT_TRUE(table.Init(16));
  for (uintptr_t i = 1; i <= 5000; ++i) ASSERT_TRUE(table.Insert(i * 16, {1, i}));
  EXPECT_GT(table.mapped_bytes(), size_t{16} * 128);
  table.ReleaseMemory();
  EXPECT_EQ(table.mapped_bytes(), 0u);
  EXPECT_EQ(table.levels(), 0u);
}

}  // namespace
}  // namespace dw
