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
// first. Allocation: none after Init(). Safe inside a hook: yes, except Init().
#pragma once

#include <atomic>
#include <cstdint>

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
    return site_detail_[site].load(std::memory_order_relaxed);
  }
  uint64_t untracked_releases() const {
    return untracked_releases_.load(std::memory_order_relaxed);
  }
  uint64_t table_overflowed() const { return table_overflowed_.load(std::memory_order_relaxed); }

  // In a fork child (see PointerTable::AfterForkChild).
  void AfterForkChild() { table_.AfterForkChild(); }

 private:
  // Handles may be 0 and odd; table keys must be non-zero and even.
  static uintptr_t Key(uint64_t handle) { return static_cast<uintptr_t>((handle + 1) << 1); }
  static uint64_t HandleOf(uintptr_t key) { return (static_cast<uint64_t>(key) >> 1) - 1; }

  PointerTable table_;
  SiteCounters counters_;
  std::atomic<uint32_t>* site_detail_ = nullptr;
  std::atomic<uint64_t> untracked_releases_{0};
  std::atomic<uint64_t> table_overflowed_{0};
};

}  // namespace dw
