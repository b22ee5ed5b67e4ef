// heap_tracker.h: the tracker for the heap resource kind: every live block and its site.
//
// It pairs a PointerTable (block address -> site, size) with SiteCounters (per-site totals).
// It knows nothing of hooks, unwinding or sockets, so tests drive it directly.
//
// A free the shim never saw (inside libc, a raw syscall path, code that bypasses the hooks)
// would leave its block live in the table forever. When the allocator hands the same address out
// again, the old block must have been freed: OnAlloc releases the old entry at its site and
// counts a missed free.
//
// In sampled mode (heap_sampler.h) only sampled blocks are recorded, each with its weight, and a
// free looks in the table only when the BlockFilter says the block may have been sampled.
//
// Thread-safety: lock-free; all methods may run concurrently. Allocation: none after Init()
// (table growth and a site's first use of a counter chunk map pages). Safe inside a hook: yes,
// except Init() and ReleaseMemory().
#pragma once

#include <cstddef>
#include <cstdint>

#include "preload/block_filter.h"
#include "preload/heap_sampler.h"
#include "preload/pointer_table.h"
#include "preload/site_counters.h"

namespace dw {

class HeapTracker {
 public:
  // `sample_mean_bytes` 0: exact mode.
  bool Init(uint32_t max_sites, uint32_t sample_mean_bytes = 0);
  // Unmaps the table and counters (a start that failed). Afterwards allocations are counted as
  // overflows and frees as untracked; nothing is mapped again.
  void ReleaseMemory();

  // A block of `size` bytes was handed out at `site` (in sampled mode: a sampled one; see
  // HeapGate for the choice).
  void OnAlloc(void* block, size_t size, uint32_t site);
  // The block is about to be freed. Call before the real free, so the address cannot be reused
  // by another thread in between. Unknown blocks (allocated before tracking, or by code the
  // shim could not see) are only counted.
  void OnFree(void* block);

  // realloc(old, size): call Begin before the real realloc and End after it, with its result.
  struct Move {
    void* handle = nullptr;
    uintptr_t old_block = 0;
    PointerTable::Entry old_entry{};
  };
  Move BeginRealloc(void* old_block);
  // `site` kUntrackedResult: record only the release of the old block.
  static constexpr uint32_t kUntrackedResult = ~0u;
  void EndRealloc(const Move& move, void* result, size_t size, uint32_t site);

  // In a fork child (see PointerTable::AfterForkChild).
  void AfterForkChild() { table_.AfterForkChild(); }

  const SiteCounters& counters() const { return counters_; }
  const HeapSampler& sampler() const { return sampler_; }
  // Sampled mode's filter of recorded blocks; null in exact mode.
  const BlockFilter* filter() const { return sampler_.sampling() ? &filter_ : nullptr; }
  uint64_t untracked_frees() const { return untracked_frees_.load(std::memory_order_relaxed); }
  uint64_t table_overflowed() const { return table_overflowed_.load(std::memory_order_relaxed); }
  // Blocks found still live when their address was handed out again (released then).
  uint64_t missed_frees() const { return missed_frees_.load(std::memory_order_relaxed); }
  // Bytes mapped now; for tests of the start-up reservation.
  size_t mapped_bytes() const {
    return table_.mapped_bytes() + counters_.mapped_bytes() + filter_.mapped_bytes();
  }
  const PointerTable& table() const { return table_; }

 private:
  BlockWeight Weigh(uintptr_t block, uint64_t size) const { return sampler_.Weigh(block, size); }
  // In sampled mode, false for a block that was certainly never recorded.
  bool MayBeRecorded(uintptr_t block) const {
    return !sampler_.sampling() || filter_.MayHold(block);
  }

  HeapSampler sampler_;
  BlockFilter filter_;  // sampled mode only
  PointerTable table_;
  SiteCounters counters_;
  std::atomic<uint64_t> untracked_frees_{0};
  std::atomic<uint64_t> table_overflowed_{0};
  std::atomic<uint64_t> missed_frees_{0};
};

}  // namespace dw
