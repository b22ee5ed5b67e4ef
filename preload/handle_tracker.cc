#include "preload/handle_tracker.h"

namespace dw {

bool HandleTracker::Init(uint32_t max_sites, uint32_t initial_buckets) {
  return site_detail_.Init(max_sites) && table_.Init(initial_buckets) && counters_.Init(max_sites);
}

void HandleTracker::ReleaseMemory() {
  site_detail_.Release();
  table_.ReleaseMemory();
  counters_.ReleaseMemory();
}

void HandleTracker::Create(uint64_t handle, uint32_t site, uint64_t state, uint32_t detail) {
  // The site's counters and detail mask are mapped before the site is stored with the handle.
  site = counters_.Admit(site);
  std::atomic<uint32_t>* site_detail = site_detail_.Ensure(site);
  if (site_detail == nullptr) {
    site = 0;
    site_detail = site_detail_.Get(0);  // null only after ReleaseMemory
  }
  // A handle number still in the table was released where no hook could see it (a raw
  // syscall, or a release inside libc): that release happened before this creation.
  PointerTable::Entry stale;
  switch (table_.Insert(Key(handle), {site, state > kMaxState ? kMaxState : state}, &stale)) {
    case PointerTable::InsertResult::kFull:
      table_overflowed_.fetch_add(1, std::memory_order_relaxed);
      return;
    case PointerTable::InsertResult::kReplaced:
      counters_.Release(stale.site, 0);
      break;
    case PointerTable::InsertResult::kInserted:
      break;
  }
  if (detail != 0 && site_detail != nullptr &&
      (site_detail->load(std::memory_order_relaxed) & detail) != detail) {
    site_detail->fetch_or(detail, std::memory_order_relaxed);
  }
  counters_.Acquire(site, 0);
}

bool HandleTracker::Release(uint64_t handle, Handle* released) {
  PointerTable::Entry entry;
  if (!table_.Erase(Key(handle), &entry)) {
    untracked_releases_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  counters_.Release(entry.site, 0);
  if (released != nullptr) *released = Handle{entry.site, entry.size};
  return true;
}

bool HandleTracker::Lookup(uint64_t handle, Handle* found) const {
  PointerTable::Entry entry;
  if (!table_.Lookup(Key(handle), &entry)) return false;
  *found = Handle{entry.site, entry.size};
  return true;
}

}  // namespace dw
