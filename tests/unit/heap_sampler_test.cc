// Sampled mode's arithmetic and bookkeeping: the libm-free math, the Poisson choice of blocks,
// the unbiased weights, the filter of sampled blocks, and the heap tracker in sampled mode.
#include "preload/heap_sampler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

#include "preload/block_filter.h"
#include "preload/heap_tracker.h"

namespace dw {
namespace {

TEST(HeapSamplerTest, LogAndExpMatchLibm) {
  for (double x = 1e-15; x <= 1.0; x *= 1.37) {
    EXPECT_NEAR(NaturalLog(x), std::log(x), 1e-11 * std::fabs(std::log(x)) + 1e-15) << x;
  }
  for (double x = 0.0; x < 800.0; x = x * 1.3 + 1e-9) {
    const double expected = std::exp(-x);
    EXPECT_NEAR(ExpNegative(x), expected, 1e-12 * expected + 1e-300) << x;
    EXPECT_NEAR(OneMinusExpNegative(x), -std::expm1(-x), 1e-12 * -std::expm1(-x) + 1e-300) << x;
  }
}

// A countdown seeded with a fixed value, so that each test sees the same draws every run.
SampleCountdown Seeded(uint64_t seed) {
  SampleCountdown countdown{0, 0};
  HeapSampler::Reseed(countdown, seed);
  return countdown;
}

TEST(HeapSamplerTest, ExactModeRecordsEverythingAtWeightOne) {
  HeapSampler exact;
  exact.Init(0);
  EXPECT_FALSE(exact.sampling());
  BlockWeight weight = exact.Weigh(0x1000, 48);
  EXPECT_EQ(weight.count, 1u);
  EXPECT_EQ(weight.bytes, 48u);
}

// Blocks of one size are sampled with probability 1 - exp(-size/mean).
TEST(HeapSamplerTest, BlocksAreSampledWithThePoissonProbability) {
  HeapSampler sampler;
  sampler.Init(4096);
  for (size_t size : {16u, 512u, 4096u, 20000u}) {
    SampleCountdown countdown = Seeded(size);
    sampler.Take(countdown, 1);  // the seeded state's first call samples; skip it
    const int draws = 400000;
    int sampled = 0;
    for (int i = 0; i < draws; ++i) sampled += sampler.Take(countdown, size) ? 1 : 0;
    const double p = -std::expm1(-static_cast<double>(size) / 4096);
    const double sigma = std::sqrt(draws * p * (1 - p));
    EXPECT_NEAR(sampled, draws * p, 5 * sigma + 1) << "size " << size;
  }
}

// The weights of the sampled blocks add up to the bytes and blocks allocated: the estimate is
// unbiased for a mix of small and large sizes.
TEST(HeapSamplerTest, WeightedSamplesEstimateTheTotals) {
  HeapSampler sampler;
  sampler.Init(64 * 1024);
  SampleCountdown countdown = Seeded(7);
  sampler.Take(countdown, 1);
  uint64_t state = 12345;
  double true_bytes = 0, true_count = 0, bytes = 0, count = 0;
  for (int i = 0; i < 2000000; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const size_t size =
        (state >> 60) == 0 ? 100000 + (state >> 40) % 100000 : 8 + (state >> 33) % 256;
    true_bytes += static_cast<double>(size);
    true_count += 1;
    if (sampler.Take(countdown, size)) {
      const BlockWeight weight = sampler.Weigh(0x10000 + 16 * static_cast<uintptr_t>(i), size);
      bytes += static_cast<double>(weight.bytes);
      count += static_cast<double>(weight.count);
    }
  }
  // Each sample stands for about mean bytes: the estimate's deviation is about
  // sqrt(mean * total); 5 of them are allowed.
  EXPECT_NEAR(bytes, true_bytes, 5 * std::sqrt(64.0 * 1024 * true_bytes));
  EXPECT_NEAR(count, true_count, 0.05 * true_count);
}

TEST(HeapSamplerTest, WeightIsAFunctionOfAddressAndSize) {
  HeapSampler sampler;
  sampler.Init(512 * 1024);
  const BlockWeight first = sampler.Weigh(0x7f0012345670, 64);
  const BlockWeight again = sampler.Weigh(0x7f0012345670, 64);
  EXPECT_EQ(first.count, again.count);
  EXPECT_EQ(first.bytes, again.bytes);
  // 64 bytes at a 512 KiB mean: each sample stands for about 8192 blocks.
  EXPECT_NEAR(static_cast<double>(first.count), 8192.5, 1.0);
  // A block far larger than the mean is always sampled and stands for itself.
  const BlockWeight huge = sampler.Weigh(0x7f0012345670, uint64_t{64} << 20);
  EXPECT_EQ(huge.count, 1u);
  EXPECT_EQ(huge.bytes, uint64_t{64} << 20);
  EXPECT_EQ(sampler.Weigh(0x1000, 0).count, 0u);
}

TEST(BlockFilterTest, CountsRiseAndFallAndSaturationSticks) {
  BlockFilter filter;
  ASSERT_TRUE(filter.Init());
  const uintptr_t block = 0x5555'0000'1230;
  EXPECT_FALSE(filter.MayHold(block));
  filter.Add(block);
  filter.Add(block + 16);  // same granule
  EXPECT_TRUE(filter.MayHold(block));
  EXPECT_TRUE(filter.MayHold(block + 64));  // a neighbour: a false positive, allowed
  filter.Remove(block);
  EXPECT_TRUE(filter.MayHold(block));
  filter.Remove(block + 16);
  EXPECT_FALSE(filter.MayHold(block));
  for (int i = 0; i < 300; ++i) filter.Add(block);
  for (int i = 0; i < 300; ++i) filter.Remove(block);
  EXPECT_TRUE(filter.MayHold(block));  // saturated: never lowered again
  filter.Release();
}

void* Block(uintptr_t n) { return reinterpret_cast<void*>(0x4000'0000 + n * 4096); }

TEST(HeapTrackerSampledTest, FreeReleasesExactlyWhatTheSampleAdded) {
  HeapTracker heap;
  ASSERT_TRUE(heap.Init(64, 512 * 1024));
  ASSERT_NE(heap.filter(), nullptr);
  for (uintptr_t i = 1; i <= 100; ++i) heap.OnAlloc(Block(i), 24 + i, 3);
  SiteCounters::Snapshot at = heap.counters().Read(3);
  EXPECT_GT(at.acquired, 100u * 1000);  // each sample stands for thousands of blocks
  for (uintptr_t i = 1; i <= 100; ++i) {
    EXPECT_TRUE(heap.filter()->MayHold(reinterpret_cast<uintptr_t>(Block(i))));
    heap.OnFree(Block(i));
  }
  at = heap.counters().Read(3);
  EXPECT_EQ(at.acquired, at.released);
  EXPECT_EQ(at.acquired_bytes, at.released_bytes);
  EXPECT_FALSE(heap.filter()->MayHold(reinterpret_cast<uintptr_t>(Block(1))));
  // Frees of blocks never sampled are the common case, not an anomaly.
  heap.OnFree(Block(1000));
  EXPECT_EQ(heap.untracked_frees(), 0u);
}

TEST(HeapTrackerSampledTest, ReallocMovesTheSampleWithItsWeight) {
  HeapTracker heap;
  ASSERT_TRUE(heap.Init(64, 4096));
  heap.OnAlloc(Block(1), 100, 1);
  HeapTracker::Move move = heap.BeginRealloc(Block(1));
  ASSERT_NE(move.handle, nullptr);
  heap.EndRealloc(move, Block(2), 200, 2);
  const SiteCounters::Snapshot old_site = heap.counters().Read(1);
  EXPECT_EQ(old_site.acquired, old_site.released);
  EXPECT_EQ(old_site.acquired_bytes, old_site.released_bytes);
  EXPECT_GT(heap.counters().Read(2).acquired_bytes, 200u);
  // An unsampled result (kUntrackedResult) only releases the old sample.
  move = heap.BeginRealloc(Block(2));
  heap.EndRealloc(move, Block(3), 300, HeapTracker::kUntrackedResult);
  const SiteCounters::Snapshot site2 = heap.counters().Read(2);
  EXPECT_EQ(site2.acquired_bytes, site2.released_bytes);
  EXPECT_FALSE(heap.filter()->MayHold(reinterpret_cast<uintptr_t>(Block(3))));
}

// Threads sample, record and free concurrently, half of each thread's blocks freed by another
// thread, while a reader polls the counters (TSan runs this): every sample is released with its
// own weight, so the site ends at zero.
TEST(HeapTrackerSampledTest, ConcurrentSamplesAndCrossThreadFreesBalance) {
  HeapTracker heap;
  ASSERT_TRUE(heap.Init(64, 256));
  constexpr int kThreads = 4;
  constexpr uintptr_t kBlocks = 20000;
  std::vector<std::vector<uintptr_t>> kept(kThreads);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      const SiteCounters::Snapshot at = heap.counters().Read(1);
      EXPECT_GE(at.acquired, at.released);
    }
  });
  auto allocate = [&](int t) {
    SampleCountdown countdown{0, 0};
    HeapSampler::Reseed(countdown, static_cast<uint64_t>(t) + 1);
    for (uintptr_t i = 0; i < kBlocks; ++i) {
      const uintptr_t block = (uintptr_t{1} << 32) * (t + 1) + i * 64;
      const size_t size = 16 + i % 300;
      if (!heap.sampler().Take(countdown, size)) continue;
      heap.OnAlloc(reinterpret_cast<void*>(block), size, 1);
      if (i % 2 == 0) {
        heap.OnFree(reinterpret_cast<void*>(block));
      } else {
        kept[t].push_back(block);
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(allocate, t);
  for (std::thread& thread : threads) thread.join();
  threads.clear();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uintptr_t block : kept[(t + 1) % kThreads]) heap.OnFree(reinterpret_cast<void*>(block));
    });
  }
  for (std::thread& thread : threads) thread.join();
  done.store(true);
  reader.join();
  const SiteCounters::Snapshot at = heap.counters().Read(1);
  EXPECT_GT(at.acquired, 0u);
  EXPECT_EQ(at.acquired, at.released);
  EXPECT_EQ(at.acquired_bytes, at.released_bytes);
}

}  // namespace
}  // namespace dw
