// The address space the shim's tables reserve: what a program under `ulimit -v` pays for the
// shim, measured as the growth of VmSize, and given back by ReleaseMemory when a start fails.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "preload/handle_tracker.h"
#include "preload/heap_tracker.h"
#include "preload/options.h"
#include "preload/site_counters.h"
#include "preload/stack_table.h"

namespace dw {
namespace {

// TSan maps shadow memory of its own as the program maps pages, so VmSize says more there.
#if defined(__SANITIZE_THREAD__)
constexpr bool kVmSizeIsOurs = false;
#else
constexpr bool kVmSizeIsOurs = true;
#endif

// This process's mapped address space (VmSize), in bytes.
size_t MappedBytes() {
  FILE* status = fopen("/proc/self/status", "r");
  if (status == nullptr) return 0;
  char line[256];
  size_t kib = 0;
  while (fgets(line, sizeof(line), status) != nullptr) {
    if (sscanf(line, "VmSize: %zu kB", &kib) == 1) break;
  }
  fclose(status);
  return kib * 1024;
}

// The tables InitRuntime maps, at the default options (2^18 sites, depth 16).
struct Tables {
  StackTable stacks;
  HeapTracker heap;
  HandleTracker fds, threads, timers;

  bool Init(uint32_t max_sites, uint32_t depth) {
    return stacks.Init(max_sites, depth) && heap.Init(max_sites) && fds.Init(max_sites, 256) &&
           threads.Init(max_sites, 64) && timers.Init(max_sites, 64);
  }
  size_t mapped_bytes() const {
    return stacks.mapped_bytes() + heap.mapped_bytes() + fds.mapped_bytes() +
           threads.mapped_bytes() + timers.mapped_bytes();
  }
  void ReleaseMemory() {
    stacks.ReleaseMemory();
    heap.ReleaseMemory();
    fds.ReleaseMemory();
    threads.ReleaseMemory();
    timers.ReleaseMemory();
  }
};

constexpr uint32_t kDefaultMaxSites = Options{}.max_sites;
// The bound: the stack index (8 bytes per possible site, 8 MiB at the default 2^20 sites), the
// first heap level (512 KiB) and the first chunk of each per-site array. Whole arrays would take
// about 300 MiB at that many sites.
constexpr size_t kStartBound = size_t{10} << 20;

TEST(TableMemoryTest, StartReservesAFewMegabytesAndReleaseGivesThemBack) {
  static Tables tables;  // static: no heap allocation between the two readings
  const size_t before = MappedBytes();
  ASSERT_GT(before, 0u);
  ASSERT_TRUE(tables.Init(kDefaultMaxSites, 16));
  const size_t after_init = MappedBytes();
  EXPECT_LT(tables.mapped_bytes(), kStartBound);
  if (kVmSizeIsOurs) {
    EXPECT_LT(after_init - before, kStartBound) << "reserved at start: " << after_init - before;
  }
  tables.ReleaseMemory();
  EXPECT_EQ(tables.mapped_bytes(), 0u);
  if (kVmSizeIsOurs) {
    EXPECT_EQ(MappedBytes(), before);
  }
  // A hook that still runs afterwards (a thread already inside one) finds empty tables and maps
  // nothing again.
  uintptr_t frames[1] = {0x1234};
  EXPECT_EQ(tables.stacks.Intern(frames, 1), StackTable::kNoSite);
  tables.heap.OnAlloc(reinterpret_cast<void*>(0x1000), 8, 1);
  tables.heap.OnFree(reinterpret_cast<void*>(0x1000));
  EXPECT_EQ(tables.heap.table_overflowed(), 1u);
  EXPECT_EQ(tables.heap.untracked_frees(), 1u);
  tables.fds.Create(3, 1, 0, 1);
  EXPECT_FALSE(tables.fds.Release(3));
  EXPECT_EQ(tables.fds.counters().Read(1).acquired, 0u);
  EXPECT_EQ(tables.mapped_bytes(), 0u);
  if (kVmSizeIsOurs) {
    EXPECT_EQ(MappedBytes(), before);
  }
}

TEST(TableMemoryTest, PerSiteMemoryFollowsTheSitesInUse) {
  static Tables tables;
  ASSERT_TRUE(tables.Init(kDefaultMaxSites, 16));
  const size_t at_start = tables.mapped_bytes();
  // 5000 distinct stacks: ids run into the fifth chunk of records and the second of counters.
  uint32_t last = 0;
  for (uintptr_t i = 1; i <= 5000; ++i) {
    uintptr_t frames[2] = {i, 0x1234};
    last = tables.stacks.Intern(frames, 2);
    ASSERT_NE(last, StackTable::kNoSite);
    tables.heap.OnAlloc(reinterpret_cast<void*>(i * 64), 32, last);
    tables.fds.Create(i, last, 0, 1);
  }
  ASSERT_GE(last, 5000u);
  EXPECT_TRUE(tables.stacks.Published(last));
  EXPECT_EQ(tables.stacks.Frames(last)[0], 5000u);
  EXPECT_EQ(tables.heap.counters().Read(last).acquired_bytes, 32u);
  EXPECT_EQ(tables.fds.counters().Read(last).acquired, 1u);
  EXPECT_EQ(tables.fds.SiteDetail(last), 1u);
  // Sites never used read as zero and map nothing.
  EXPECT_EQ(tables.heap.counters().Read(kDefaultMaxSites - 1).acquired, 0u);
  EXPECT_EQ(tables.fds.SiteDetail(kDefaultMaxSites - 1), 0u);
  EXPECT_FALSE(tables.stacks.Published(kDefaultMaxSites - 1));
  // Five record chunks (144 KiB each) and a second counter chunk per kind: about 1.5 MiB.
  EXPECT_LT(tables.mapped_bytes() - at_start, size_t{2} << 20);
  tables.ReleaseMemory();
}

TEST(TableMemoryTest, SiteCountersOfAnUnmappedChunkMapOnFirstUse) {
  SiteCounters counters;
  ASSERT_TRUE(counters.Init(kDefaultMaxSites));
  const size_t at_start = counters.mapped_bytes();
  EXPECT_EQ(counters.Read(100000).acquired, 0u);
  EXPECT_EQ(counters.mapped_bytes(), at_start);  // reading maps nothing
  EXPECT_EQ(counters.Admit(100000), 100000u);
  counters.Acquire(100000, 8);
  counters.Release(100000, 8);
  EXPECT_EQ(counters.Read(100000).released_bytes, 8u);
  EXPECT_EQ(counters.Read(100001).acquired, 0u);
  EXPECT_EQ(counters.mapped_bytes(), at_start + 4096 * 32);  // one more chunk of 4096 sites
  EXPECT_EQ(counters.Admit(kDefaultMaxSites), 0u);           // past the end: unattributed
  counters.ReleaseMemory();
  EXPECT_EQ(counters.mapped_bytes(), 0u);
}

}  // namespace
}  // namespace dw
