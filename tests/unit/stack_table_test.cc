#include "preload/stack_table.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace dw {
namespace {

TEST(StackTableTest, SameStackSameIdDifferentStackDifferentId) {
  StackTable table;
  ASSERT_TRUE(table.Init(1024, 8));
  uintptr_t a[] = {0x1000, 0x2000, 0x3000};
  uintptr_t b[] = {0x1000, 0x2000, 0x3001};
  uint32_t id_a = table.Intern(a, 3);
  uint32_t id_b = table.Intern(b, 3);
  EXPECT_NE(id_a, StackTable::kNoSite);
  EXPECT_NE(id_a, id_b);
  EXPECT_EQ(table.Intern(a, 3), id_a);
  EXPECT_EQ(table.Intern(a, 2), table.Intern(a, 2));
  EXPECT_NE(table.Intern(a, 2), id_a);  // a prefix is a different stack
  ASSERT_TRUE(table.Published(id_a));
  EXPECT_EQ(table.Depth(id_a), 3u);
  EXPECT_EQ(table.Frames(id_b)[2], 0x3001u);
}

TEST(StackTableTest, ClampsDepth) {
  StackTable table;
  ASSERT_TRUE(table.Init(1024, 4));
  uintptr_t frames[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  uint32_t id = table.Intern(frames, 8);
  EXPECT_EQ(table.Depth(id), 4u);
  EXPECT_EQ(table.Intern(frames, 4), id);
}

TEST(StackTableTest, FullTableReturnsNoSiteAndCounts) {
  StackTable table;
  ASSERT_TRUE(table.Init(4, 2));  // ids 1..3 usable
  for (uintptr_t i = 1; i <= 3; ++i) EXPECT_NE(table.Intern(&i, 1), StackTable::kNoSite);
  uintptr_t extra = 99;
  EXPECT_EQ(table.Intern(&extra, 1), StackTable::kNoSite);
  EXPECT_EQ(table.overflowed(), 1u);
  uintptr_t known = 2;
  EXPECT_NE(table.Intern(&known, 1), StackTable::kNoSite);  // existing stacks still resolve
}

TEST(StackTableTest, ConcurrentInternsAgreeOnIds) {
  StackTable table;
  ASSERT_TRUE(table.Init(1 << 16, 4));
  constexpr int kThreads = 4;
  constexpr int kStacks = 5000;
  std::vector<std::vector<uint32_t>> ids(kThreads, std::vector<uint32_t>(kStacks));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kStacks; ++i) {
        uintptr_t frames[2] = {static_cast<uintptr_t>(i), 0xabc};
        ids[t][i] = table.Intern(frames, 2);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::vector<bool> seen(table.end_id(), false);
  for (int i = 0; i < kStacks; ++i) {
    for (int t = 1; t < kThreads; ++t) ASSERT_EQ(ids[t][i], ids[0][i]) << "stack " << i;
    ASSERT_FALSE(seen[ids[0][i]]) << "two stacks share id " << ids[0][i];
    seen[ids[0][i]] = true;
    ASSERT_FALSE(table.IsDuplicate(ids[0][i]));
  }
  // Every id handed out is either a stack's id or a lost race marked duplicate.
  int live = 0;
  for (uint32_t id = 1; id < table.end_id(); ++id) {
    ASSERT_TRUE(table.Published(id));
    if (!table.IsDuplicate(id)) ++live;
  }
  EXPECT_EQ(live, kStacks);
}

}  // namespace
}  // namespace dw
