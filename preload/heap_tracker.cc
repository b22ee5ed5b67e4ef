#include "preload/heap_tracker.h"

namespace dw {

bool HeapTracker::Init(uint32_t max_sites, uint32_t sample_mean_bytes) {
  sampler_.Init(sample_mean_bytes);
  if (sampler_.sampling() && !filter_.Init()) return false;
  // 4096 buckets of 8 slots (512 KiB of address space) cover the live blocks of most small
  // programs; larger heaps add levels. Sampled mode holds a few thousand blocks at most.
  return table_.Init(sampler_.sampling() ? 256 : 4096) && counters_.Init(max_sites);
}

void HeapTracker::ReleaseMemory() {
  table_.ReleaseMemory();
  counters_.ReleaseMemory();
  filter_.Release();
}

void HeapTracker::OnAlloc(void* block, size_t size, uint32_t site) {
  if (block == nullptr) return;
  site = counters_.Admit(site);
  const auto key = reinterpret_cast<uintptr_t>(block);
  if (size > PointerTable::kMaxSize) size = PointerTable::kMaxSize;  // as the table stores it
  PointerTable::Entry stale;
  switch (table_.Insert(key, {site, size}, &stale)) {
    case PointerTable::InsertResult::kFull:
      table_overflowed_.fetch_add(1, std::memory_order_relaxed);
      return;
    case PointerTable::InsertResult::kReplaced: {
      // OnFree runs before the real free, so a live entry for an address the allocator just
      // returned can only be a block whose free the shim missed. (Its filter count stays: the
      // address is recorded again.)
      const BlockWeight missed = Weigh(key, stale.size);
      counters_.Release(stale.site, missed.bytes, missed.count);
      missed_frees_.fetch_add(1, std::memory_order_relaxed);
      break;
    }
    case PointerTable::InsertResult::kInserted:
      filter_.Add(key);  // nothing in exact mode: the filter is never mapped
      break;
  }
  const BlockWeight weight = Weigh(key, size);
  counters_.Acquire(site, weight.bytes, weight.count);
}

void HeapTracker::OnFree(void* block) {
  if (block == nullptr) return;
  const auto key = reinterpret_cast<uintptr_t>(block);
  if (!MayBeRecorded(key)) return;
  PointerTable::Entry entry;
  if (table_.Erase(key, &entry)) {
    filter_.Remove(key);
    const BlockWeight weight = Weigh(key, entry.size);
    counters_.Release(entry.site, weight.bytes, weight.count);
  } else if (!sampler_.sampling()) {
    // In sampled mode most frees are of blocks never recorded: nothing to count.
    untracked_frees_.fetch_add(1, std::memory_order_relaxed);
  }
}

HeapTracker::Move HeapTracker::BeginRealloc(void* old_block) {
  Move move;
  move.old_block = reinterpret_cast<uintptr_t>(old_block);
  if (old_block != nullptr && MayBeRecorded(move.old_block)) {
    move.handle = table_.BeginMove(move.old_block, &move.old_entry);
  }
  return move;
}

void HeapTracker::EndRealloc(const Move& move, void* result, size_t size, uint32_t site) {
  // glibc: a non-null result means the old block is gone (moved or resized in place); a null
  // result with size 0 means realloc freed it; a null result otherwise is a failure that leaves
  // the old block valid.
  const bool old_released = result != nullptr || size == 0;
  if (move.handle != nullptr) {
    table_.EndMove(move.handle, old_released);
    if (old_released) {
      filter_.Remove(move.old_block);
      const BlockWeight weight = Weigh(move.old_block, move.old_entry.size);
      counters_.Release(move.old_entry.site, weight.bytes, weight.count);
    }
  }
  if (result != nullptr && site != kUntrackedResult) OnAlloc(result, size, site);
}

}  // namespace dw
