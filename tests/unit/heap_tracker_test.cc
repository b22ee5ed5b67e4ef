#include "preload/heap_tracker.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace dw
