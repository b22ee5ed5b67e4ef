// handle_tracker.h: the tracker shared by the handle-based resource kinds (file descriptors,
// threads, POSIX timers): every live handle, its site, and per-site counters.
//
// A handle is a small integer or an opaque word (an fd number, a pthread_t, a timer_t). Each
// live handle keeps its site and 40 bits of kind-specific state (an fd's type, a thread's tid
// and join state). Sites also accumulate the OR of their handles' detail bits, so the census can
// say "this site makes sockets and pipes".
//
// Thread-safety: lock-free; all methods may run concurrently, on any handles. Unlike heap
// blocks, the same handle number can be created twice without a release in between (a close
// the shim could not see, such as a raw close syscall): Create() then releases the stale entry
// first. Per-site memory (counters, detail masks) is mapped as site ids reach it (LazyArray).
// Allocation: none from the heap; Init(), table growth and a site's first use of a chunk map
// pages. Safe inside a hook: yes, except Init() and ReleaseMemory().
#pragma once

#include <atomic>
#include <cstdint>

#include "preload/lazy_array.h"
#include "preload/pointer_table.h"
#include "preload/site_counters.h"

namespace dw {

class HandleTracker {
 public:
  struct Handle {
    uint32_t site;
    uint64_t state;  // kind-specific, 40 bits
  };
  static constexpr uint64_t kMaxState = PointerTable::kMaxSize;

  bool Init(uint32_t max_sites, uint32_t initial_buckets);
  // Unmaps the table and per-site memory (a start that failed). Afterwards creations are
  // counted as overflows and nothing is found.
  void ReleaseMemory();

  // A handle was created at `site`. `detail` bits are ORed into the site's detail mask.
  void Create(uint64_t handle, uint32_t site, uint64_t state, uint32_t detail);
  // The handle was released; false (and counted) if the shim never saw it created.
  bool Release(uint64_t handle, Handle* released = nullptr);
  bool Lookup(uint64_t handle, Handle* found) const;
  // Atomically replaces the handle's state with update(state); false if the handle is absent.
  template <typename Update>
  bool UpdateState(uint64_t handle, Update update, Handle* previous) {
    PointerTable::Entry old;
    bool found = table_.UpdateEntry(
        Key(handle),
        [&](PointerTable::Entry entry) {
          return PointerTable::Entry{entry.site, update(entry.size)};
        },
        &old);
    if (found) *previous = Handle{old.site, old.size};
    return found;
  }
  // Calls visit(handle, Handle) for every live handle (census thread).
  template <typename Visit>
  void ForEach(Visit visit) const {
    table_.ForEach([&](uintptr_t key, PointerTable::Entry entry) {
      visit(HandleOf(key), Handle{entry.site, entry.size});
    });
  }

  const SiteCounters& counters() const { return counters_; }
  uint32_t SiteDetail(uint32_t site) const {
    const std::atomic<uint32_t>* detail = site_detail_.Get(site);
    return detail != nullptr ? detail->load(std::memory_order_relaxed) : 0;
  }
  uint64_t untracked_releases() const {
    return untracked_releases_.load(std::memory_order_relaxed);
  }
  uint64_t table_overflowed() const { return table_overflowed_.load(std::memory_order_relaxed); }
  // Bytes mapped now; for tests of the start-up reservation.
  size_t mapped_bytes() const {
    return table_.mapped_bytes() + counters_.mapped_bytes() + site_detail_.mapped_bytes();
  }

  // In a fork child (see PointerTable::AfterForkChild).
  void AfterForkChild() { table_.AfterForkChild(); }

 private:
  // Handles may be 0 and odd; table keys must be non-zero and even.
  static uintptr_t Key(uint64_t handle) { return static_cast<uintptr_t>((handle + 1) << 1); }
  static uint64_t HandleOf(uintptr_t key) { return (static_cast<uint64_t>(key) >> 1) - 1; }

  PointerTable table_;
  SiteCounters counters_;
  LazyArray<std::atomic<uint32_t>, 12> site_detail_;  // 4096 sites (16 KiB) per chunk
  std::atomic<uint64_t> untracked_releases_{0};
  std::atomic<uint64_t> table_overflowed_{0};
};

}  // namespace dw
