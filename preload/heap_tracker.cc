#include "preload/heap_tracker.h"

namespace dw {

bool HeapTracker::Init(uint32_t max_sites) {
  // 4096 buckets of 8 slots (512 KiB of address space) cover the live blocks of most small
  // programs; larger heaps add levels.
  return table_.Init(4096) && counters_.Init(max_sites);
}

void HeapTracker::ReleaseMemory() {
  table_.ReleaseMemory();
  counters_.ReleaseMemory();
}

void HeapTracker::OnAlloc(void* block, size_t size, uint32_t site) {
  if (block == nullptr) return;
  site = counters_.Admit(site);
  PointerTable::Entry stale;
  switch (table_.Insert(reinterpret_cast<uintptr_t>(block), {site, size}, &stale)) {
    case PointerTable::InsertResult::kFull:
      table_overflowed_.fetch_add(1, std::memory_order_relaxed);
      return;
    case PointerTable::InsertResult::kReplaced:
      // OnFree runs before the real free, so a live entry for an address the allocator just
      // returned can only be a block whose free the shim missed.
      counters_.Release(stale.site, stale.size);
      missed_frees_.fetch_add(1, std::memory_order_relaxed);
      break;
    case PointerTable::InsertResult::kInserted:
      break;
  }
  counters_.Acquire(site, size);
}

void HeapTracker::OnFree(void* block) {
  if (block == nullptr) return;
  PointerTable::Entry entry;
  if (table_.Erase(reinterpret_cast<uintptr_t>(block), &entry)) {
    counters_.Release(entry.site, entry.size);
  } else {
    untracked_frees_.fetch_add(1, std::memory_order_relaxed);
  }
}

HeapTracker::Move HeapTracker::BeginRealloc(void* old_block) {
  Move move;
  if (old_block != nullptr) {
    move.handle = table_.BeginMove(reinterpret_cast<uintptr_t>(old_block), &move.old_entry);
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
    if (old_released) counters_.Release(move.old_entry.site, move.old_entry.size);
  }
  if (result != nullptr && site != kUntrackedResult) OnAlloc(result, size, site);
}

}  // namespace dw
