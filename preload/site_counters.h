// site_counters.h: per-site cumulative counters for one resource kind.
//
// Counters only ever grow (acquired, released, and their byte sums), so the census thread can
// read them at any moment without coordination and the collector derives live values as
// differences. A reading taken while hooks run may be a few operations stale, never torn.
//
// Thread-safety: lock-free (relaxed atomic adds). Allocation: none after Init().
// Safe inside a hook: yes (Acquire/Release); Init(), no.
#pragma once

#include <atomic>
#include <cstdint>

namespace dw {

class SiteCounters {
 public:
  struct Snapshot {
    uint64_t acquired, released, acquired_bytes, released_bytes;
  };

  // Maps counters for site ids [0, max_sites). False if mapping failed.
  bool Init(uint32_t max_sites);

  void Acquire(uint32_t site, uint64_t bytes) {
    Cell& cell = cells_[site];
    cell.acquired.fetch_add(1, std::memory_order_relaxed);
    cell.acquired_bytes.fetch_add(bytes, std::memory_order_relaxed);
  }
  void Release(uint32_t site, uint64_t bytes) {
    Cell& cell = cells_[site];
    cell.released_bytes.fetch_add(bytes, std::memory_order_relaxed);
    // Release order pairs with Read(): a reader that sees this release also sees the matching
    // acquisition, which happened before it.
    cell.released.fetch_add(1, std::memory_order_release);
  }

  Snapshot Read(uint32_t site) const;
  uint32_t max_sites() const { return max_sites_; }

 private:
  struct Cell {
    std::atomic<uint64_t> acquired, released, acquired_bytes, released_bytes;
  };
  Cell* cells_ = nullptr;
  uint32_t max_sites_ = 0;
};

}  // namespace dw
