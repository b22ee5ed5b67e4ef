#include "preload/stack_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <unordered_set>
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

// The stacks of bench/programs/recursive.c: chains of 5 or 6 calls among 8 functions, each
// frame the return address of the call site that picked the next function, under a fixed
// outer part. 294,912 stacks that differ only in a few frames, in few bits of each.
std::vector<std::vector<uintptr_t>> RecursiveStacks() {
  std::vector<std::vector<uintptr_t>> stacks;
  for (uint32_t length = 5; length <= 6; ++length) {
    for (uint32_t chain = 0; chain < (1u << (3 * length)); ++chain) {
      std::vector<uintptr_t> frames = {0x401234};  // the leaf's malloc call
      for (uint32_t level = 0; level < length; ++level) {
        const uint32_t caller = (chain >> (3 * level)) & 7;
        const uint32_t callee = level == 0 ? 8 : (chain >> (3 * (level - 1))) & 7;
        frames.push_back(0x401400 + caller * 0x90 + callee * 0xC);
      }
      for (uintptr_t outer = 0x401a00; frames.size() < 16; outer += 0x1b) frames.push_back(outer);
      stacks.push_back(frames);
    }
  }
  return stacks;
}

// A weak hash would still intern correctly (records are compared whole) but would crowd the
// index into long probe runs; this guards the spread the lock-free index relies on.
TEST(StackTableTest, HashSpreadsSimilarStacks) {
  const auto stacks = RecursiveStacks();
  ASSERT_EQ(stacks.size(), 294912u);
  std::unordered_set<uint64_t> hashes;
  std::unordered_set<uint64_t> index_slots;  // home slots in a 2^20-slot index
  for (const auto& frames : stacks) {
    const uint64_t hash = HashFrames(frames.data(), 16);
    hashes.insert(hash);
    index_slots.insert(HomeSlot(hash, 20));
  }
  EXPECT_EQ(hashes.size(), stacks.size()) << "64-bit hash collisions";
  // A uniform hash fills 2^20 * (1 - exp(-294912 / 2^20)) = 257.1k distinct slots.
  EXPECT_GT(index_slots.size(), 254000u);
  // Frame order matters: two swapped frames are another stack.
  auto swapped = stacks[12345];
  std::swap(swapped[1], swapped[2]);
  EXPECT_NE(HashFrames(swapped.data(), 16), HashFrames(stacks[12345].data(), 16));
}

TEST(StackTableTest, InternsManySimilarStacksToDistinctStableIds) {
  const auto stacks = RecursiveStacks();
  StackTable table;
  ASSERT_TRUE(table.Init(1 << 19, 16));
  std::vector<uint32_t> ids;
  for (const auto& frames : stacks) ids.push_back(table.Intern(frames.data(), 16));
  std::vector<uint32_t> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end());
  EXPECT_EQ(sorted.front(), 1u);
  for (size_t i = 0; i < stacks.size(); i += 97) {
    ASSERT_EQ(table.Intern(stacks[i].data(), 16), ids[i]);
  }
}

// Two different 2-frame stacks with the same 64-bit hash, built by inverting the hash's steps
// (it mirrors HashStack in preload/stack_table.cc; the test asserts the collision first, so a
// change of the hash shows here as a failed precondition, not as a silent pass).
struct Collision {
  uintptr_t a[2], b[2];
};
Collision CollidingStacks() {
  constexpr uint64_t kMul = 0xFF51AFD7ED558CCDull;
  constexpr uint64_t kSeed0 = 0x9E3779B97F4A7C15ull, kSeed1 = 0xC2B2AE3D27D4EB4Full;
  uint64_t inverse = kMul;  // Newton's iteration for kMul's inverse mod 2^64
  for (int i = 0; i < 6; ++i) inverse *= 2 - kMul * inverse;
  auto step = [](uint64_t lane, uint64_t frame) {
    lane = (lane ^ frame) * kMul;
    return lane ^ (lane >> 32);
  };
  auto unstep = [&](uint64_t lane, uint64_t result) {  // the frame with step(lane, frame) == result
    return lane ^ ((result ^ (result >> 32)) * inverse);
  };
  auto rotate = [](uint64_t value) { return (value << 16) | (value >> 48); };
  Collision c{{0x401000, 0x402000}, {0, 0x402008}};
  const uint64_t lane0 = step(kSeed0 ^ 2, c.a[0]);
  const uint64_t wanted = lane0 ^ rotate(step(kSeed1, c.a[1])) ^ rotate(step(kSeed1, c.b[1]));
  c.b[0] = unstep(kSeed0 ^ 2, wanted);
  return c;
}

// The index goes by the hash; a record is only ever taken for a stack whose frames match it, so
// a full 64-bit collision still gives two sites.
TEST(StackTableTest, CollidingHashesStayDistinctStacks) {
  const Collision c = CollidingStacks();
  ASSERT_EQ(HashFrames(c.a, 2), HashFrames(c.b, 2)) << "precondition: the stacks collide";
  StackTable table;
  ASSERT_TRUE(table.Init(1024, 4));
  const uint32_t id_a = table.Intern(c.a, 2);
  const uint32_t id_b = table.Intern(c.b, 2);
  EXPECT_NE(id_a, id_b);
  EXPECT_EQ(table.Frames(id_b)[0], c.b[0]);
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(table.Intern(c.a, 2), id_a);
    EXPECT_EQ(table.Intern(c.b, 2), id_b);
  }
}

// Ids belong to one table: the same stack in another table has that table's id.
TEST(StackTableTest, SameStackInTwoTablesHasEachTablesId) {
  StackTable first, second;
  ASSERT_TRUE(first.Init(1024, 4));
  ASSERT_TRUE(second.Init(1024, 4));
  uintptr_t filler[] = {0x5000, 0x6000};
  uintptr_t stack[] = {0x1000, 0x2000};
  const uint32_t in_second_filler = second.Intern(filler, 2);
  const uint32_t in_first = first.Intern(stack, 2);
  const uint32_t in_second = second.Intern(stack, 2);
  EXPECT_NE(in_second, in_second_filler);
  EXPECT_NE(in_first, in_second);
  EXPECT_EQ(second.Frames(in_second)[1], 0x2000u);
  EXPECT_EQ(first.Intern(stack, 2), in_first);
  first.ReleaseMemory();
  EXPECT_EQ(first.Intern(stack, 2), StackTable::kNoSite);  // not its id from before the release
}

}  // namespace
}  // namespace dw
