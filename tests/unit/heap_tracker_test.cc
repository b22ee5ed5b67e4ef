#include "preload/heap_tracker.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

namespace dw {
namespace {

void* Fake(uintptr_t n) { return reinterpret_cast<void*>(n * 64); }

TEST(HeapTrackerTest, CountsPerSite) {
  HeapTracker heap;
  ASSERT_TRUE(heap.Init(64));
  for (uintptr_t i = 1; i <= 1000; ++i) heap.OnAlloc(Fake(i), 48, 5);
  for (uintptr_t i = 1; i <= 400; ++i) heap.OnFree(Fake(i));
  SiteCounters::Snapshot at = heap.counters().Read(5);
  EXPECT_EQ(at.acquired - at.released, 600u);
  EXPECT_EQ(at.acquired_bytes - at.released_bytes, 28800u);
  EXPECT_EQ(heap.counters().Read(6).acquired, 0u);
}

TEST(HeapTrackerTest, UnknownFreeIsCountedNotAttributed) {
  HeapTracker heap;
  ASSERT_TRUE(heap.Init(64));
  heap.OnFree(Fake(9));
  EXPECT_EQ(heap.untracked_frees(), 1u);
  EXPECT_EQ(heap.counters().Read(0).released, 0u);
}

TEST(HeapTrackerTest, ReallocEdgeCases) {
  HeapTracker heap;
  ASSERT_TRUE(heap.Init(64));
  heap.OnAlloc(Fake(1), 10, 1);
  // Moved: the old site releases 10 bytes, the new site owns 30.
  HeapTracker::Move move = heap.BeginRealloc(Fake(1));
  heap.EndRealloc(move, Fake(2), 30, 2);
  EXPECT_EQ(heap.counters().Read(1).released_bytes, 10u);
  EXPECT_EQ(heap.counters().Read(2).acquired_bytes, 30u);
  // Failed (null result, size > 0): nothing changes, the old block stays live.
  move = heap.BeginRealloc(Fake(2));
  heap.EndRealloc(move, nullptr, 1 << 30, 3);
  EXPECT_EQ(heap.counters().Read(2).released, 0u);
  EXPECT_EQ(heap.counters().Read(3).acquired, 0u);
  // realloc(p, 0): freed.
  move = heap.BeginRealloc(Fake(2));
  heap.EndRealloc(move, nullptr, 0, 3);
  EXPECT_EQ(heap.counters().Read(2).released, 1u);
  EXPECT_EQ(heap.counters().Read(3).acquired, 0u);
  // realloc(NULL, n): a plain allocation.
  move = heap.BeginRealloc(nullptr);
  heap.EndRealloc(move, Fake(4), 8, 4);
  EXPECT_EQ(heap.counters().Read(4).acquired, 1u);
}

TEST(HeapTrackerTest, ConcurrentThreadsNoLostUpdates) {
  HeapTracker heap;
  ASSERT_TRUE(heap.Init(64));
  constexpr int kThreads = 4;
  constexpr uintptr_t kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uintptr_t i = 0; i < kPerThread; ++i) {
        void* block = Fake(1 + i * kThreads + t);
        heap.OnAlloc(block, 16, 7);
        // Frees happen on another thread's blocks too: hand every other block to a neighbour's
        // range by freeing only even blocks here and leaving odd ones live.
        if (i % 2 == 0) heap.OnFree(block);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  SiteCounters::Snapshot at = heap.counters().Read(7);
  EXPECT_EQ(at.acquired, kThreads * kPerThread);
  EXPECT_EQ(at.released, kThreads * kPerThread / 2);
  EXPECT_EQ(at.acquired_bytes - at.released_bytes, kThreads * kPerThread / 2 * 16);
  EXPECT_EQ(heap.untracked_frees(), 0u);
}

// Defect 13 (issue 9): 16 threads keep 480k blocks live and insert and erase short-lived ones
// beside them, so the table grows about ten times with erases racing each growth. The first
// thread to grow is stalled there (as if preempted or stopped) until every other thread has done
// all its allocations, which need the later levels: no insert may be dropped meanwhile
// (table_overflowed), and every block must be found by its one free.
constexpr int kGrowthThreads = 16;
std::atomic<int> g_threads_done{0};
std::atomic<bool> g_grower_stalled{false};

void StallFirstGrower() {
  if (g_grower_stalled.exchange(true)) return;
  for (int waited_ms = 0; waited_ms < 20000; ++waited_ms) {
    if (g_threads_done.load() == kGrowthThreads - 1) return;
    usleep(1000);
  }
}

TEST(HeapTrackerTest, StalledGrowthDropsNothing) {
  HeapTracker heap;
  ASSERT_TRUE(heap.Init(64));                  // a first level of 32k slots
  constexpr uintptr_t kLivePerThread = 30000;  // 480k live blocks in all
  g_threads_done = 0;
  g_grower_stalled = false;
  PointerTable::SetGrowthHookForTesting(StallFirstGrower);
  std::vector<std::thread> threads;
  for (int t = 0; t < kGrowthThreads; ++t) {
    threads.emplace_back([&heap, t] {
      const uintptr_t base = (uintptr_t{1} + t) << 28;
      for (uintptr_t i = 0; i < kLivePerThread; ++i) {
        heap.OnAlloc(Fake(base + 2 * i), 16, 1 + t);
        heap.OnAlloc(Fake(base + 2 * i + 1), 8, 1 + t);
        heap.OnFree(Fake(base + 2 * i + 1));
      }
      ++g_threads_done;
    });
  }
  for (auto& thread : threads) thread.join();
  PointerTable::SetGrowthHookForTesting(nullptr);
  ASSERT_TRUE(g_grower_stalled.load());
  EXPECT_EQ(heap.table_overflowed(), 0u) << "allocations dropped while the table grew";
  EXPECT_GT(heap.table().levels(), 4u);
  EXPECT_EQ(heap.table().CountForTesting(), kGrowthThreads * kLivePerThread);
  threads.clear();
  for (int t = 0; t < kGrowthThreads; ++t) {
    threads.emplace_back([&heap, t] {
      const uintptr_t base = (uintptr_t{1} + t) << 28;
      for (uintptr_t i = 0; i < kLivePerThread; ++i) heap.OnFree(Fake(base + 2 * i));
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(heap.untracked_frees(), 0u);
  EXPECT_EQ(heap.missed_frees(), 0u);
  EXPECT_EQ(heap.table().CountForTesting(), 0u);
  for (uint32_t site = 1; site <= kGrowthThreads; ++site) {
    SiteCounters::Snapshot at = heap.counters().Read(site);
    EXPECT_EQ(at.acquired, 2 * kLivePerThread) << "site " << site;
    EXPECT_EQ(at.released, 2 * kLivePerThread) << "site " << site;
  }
}

TEST(HeapTrackerTest, MissedFreeIsReleasedWhenTheAddressComesBack) {
  HeapTracker heap;
  ASSERT_TRUE(heap.Init(64));
  heap.OnAlloc(Fake(1), 100, 3);
  // Its free happens where the shim cannot see it; the allocator then hands the address out
  // again.
  heap.OnAlloc(Fake(1), 40, 4);
  EXPECT_EQ(heap.missed_frees(), 1u);
  SiteCounters::Snapshot old_site = heap.counters().Read(3);
  EXPECT_EQ(old_site.acquired, 1u);
  EXPECT_EQ(old_site.released, 1u);
  EXPECT_EQ(old_site.released_bytes, 100u);
  EXPECT_EQ(heap.counters().Read(4).acquired, 1u);
  EXPECT_EQ(heap.table().CountForTesting(), 1u);
  // The free of the new block releases the new entry, and no phantom is left behind.
  heap.OnFree(Fake(1));
  EXPECT_EQ(heap.counters().Read(4).released_bytes, 40u);
  EXPECT_EQ(heap.table().CountForTesting(), 0u);
  EXPECT_EQ(heap.untracked_frees(), 0u);
  heap.OnFree(Fake(1));
  EXPECT_EQ(heap.untracked_frees(), 1u);
  EXPECT_EQ(heap.missed_frees(), 1u);
}

}  // namespace
}  // namespace dw
