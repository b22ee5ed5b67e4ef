#include "preload/handle_tracker.h"

#include "preload/os.h"

namespace dw {

bool HandleTracker::Init(uint32_t max_sites, uint32_t initial_buckets) {
  site_detail_ =
      static_cast<std::atomic<uint32_t>*>(os::MapPages(sizeof(std::atomic<uint32_t>) * max_sites));
  return site_detail_ != nullptr && table_.Init(initial_buckets) && counters_.Init(max_sites);
}

void HandleTracker::Create(uint64_t handle, uint32_t site, uint64_t state, uint32_t detail) {
  // A handle number still in the table was released where no hook could see it (a raw
  // syscall, or a release inside libc): that release happened before this creation.
  PointerTable::Entry stale;
  if (table_.Erase(Key(handle), &stale)) counters_.Release(stale.site, 0);
  if (!table_.Insert(Key(handle), {site, state > kMaxState ? kMaxState : state})) {
    table_overflowed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (detail != 0 && (SiteDetail(site) & detail) != detail) {
    site_detail_[site].fetch_or(detail, std::memory_order_relaxed);
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
