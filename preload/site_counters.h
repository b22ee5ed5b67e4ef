// site_counters.h: per-site cumulative counters for one resource kind.
//
// Counters only ever grow (acquired, released, and their byte sums), so the census thread can
// read them at any moment without coordination and the collector derives live values as
// differences. A reading taken while hooks run may be a few operations stale, never torn.
//
// Memory is mapped in chunks of 4096 sites as site ids first reach them (LazyArray), so a
// program with few sites reserves little address space whatever DRIFTWATCH_MAX_SITES is.
//
// A bit per site says "changed since the census last took it", so a census reads only the sites
// that changed: with a million quiet stacks it costs what changed, not what exists. A writer
// sets the bit after its counter update and only when it is clear (a load, rarely an RMW); the
// census clears a word of bits before it reads their counters. The counter updates and the bit's
// load are sequentially consistent and so is the census's exchange, which rules out the one bad
// interleaving (a writer that saw the bit still set, updated by a census that cleared it and
// then read the counter without the update). On x86 the counter updates are locked
// instructions either way, so this costs nothing there.
//
// Thread-safety: lock-free (relaxed atomic adds). Allocation: none from the heap; Init() and the
// first use of a site in a new chunk map pages. Safe inside a hook: Admit/Acquire/Release, yes;
// Init() and Release(), no.
#pragma once

#include <atomic>
#include <cstdint>

#include "preload/lazy_array.h"

namespace dw {

class SiteCounters {
 public:
  struct Snapshot {
    uint64_t acquired, released, acquired_bytes, released_bytes;
  };

  // Counters for site ids [0, max_sites); site 0's chunk is mapped now. False if mapping failed.
  bool Init(uint32_t max_sites);
  // Unmaps everything (a start that failed). Afterwards counts go to a shared sink and every
  // site reads as zero.
  void ReleaseMemory();

  // The site to record a new resource under: `site` once its counters are mapped, or 0
  // ("unattributed") if they cannot be. Call before storing the site with the resource, so its
  // later Release() finds mapped counters.
  uint32_t Admit(uint32_t site) { return cells_.Ensure(site) != nullptr ? site : 0; }

  // `count`: how many resources this one stands for (1, or a sampled block's estimate).
  void Acquire(uint32_t site, uint64_t bytes, uint64_t count = 1) {
    Cell& cell = CellFor(site);
    cell.acquired.fetch_add(count, std::memory_order_seq_cst);
    cell.acquired_bytes.fetch_add(bytes, std::memory_order_seq_cst);
    MarkChanged(site);
  }
  void Release(uint32_t site, uint64_t bytes, uint64_t count = 1) {
    Cell& cell = CellFor(site);
    cell.released_bytes.fetch_add(bytes, std::memory_order_seq_cst);
    // Pairs with Read(): a reader that sees this release also sees the matching acquisition,
    // which happened before it.
    cell.released.fetch_add(count, std::memory_order_seq_cst);
    MarkChanged(site);
  }

  // The census side. Marks a site changed (again): one whose change could not be sent yet.
  void MarkChanged(uint32_t site) const {
    if (changed_ == nullptr || site >= max_sites()) return;
    std::atomic<uint64_t>& word = changed_[site / 64];
    const uint64_t bit = uint64_t{1} << (site % 64);
    if ((word.load(std::memory_order_seq_cst) & bit) == 0) {
      word.fetch_or(bit, std::memory_order_seq_cst);
    }
  }
  // Calls visit(site) for every site below `end` marked changed, clearing the marks first.
  template <typename Visit>
  void TakeChanged(uint32_t end, Visit visit) const {
    if (changed_ == nullptr) return;
    if (end > max_sites()) end = max_sites();
    for (uint32_t index = 0; index < (end + 63) / 64; ++index) {
      if (changed_[index].load(std::memory_order_relaxed) == 0) continue;
      for (uint64_t bits = changed_[index].exchange(0, std::memory_order_seq_cst); bits != 0;
           bits &= bits - 1) {
        visit(index * 64 + static_cast<uint32_t>(__builtin_ctzll(bits)));
      }
    }
  }
  // Clears every mark (a census about to read every site anyway).
  void ClearChanged() const;

  // A site whose counters were never mapped reads as all zero.
  Snapshot Read(uint32_t site) const;
  uint32_t max_sites() const { return cells_.capacity(); }
  size_t mapped_bytes() const { return cells_.mapped_bytes(); }

 private:
  struct Cell {
    std::atomic<uint64_t> acquired, released, acquired_bytes, released_bytes;
  };
  // A site that was not admitted (a caller that skipped Admit, or an unmappable chunk) is
  // counted as unattributed rather than lost.
  Cell& CellFor(uint32_t site) {
    Cell* cell = cells_.Ensure(site);
    if (cell == nullptr) cell = cells_.Get(0);
    return cell != nullptr ? *cell : sink_;  // sink: only after ReleaseMemory
  }

  LazyArray<Cell, 12> cells_;  // 4096 sites (128 KiB) per chunk
  // A bit per site, mapped whole at Init (max_sites / 8 bytes, touched as sites change).
  std::atomic<uint64_t>* changed_ = nullptr;
  static Cell sink_;
};

}  // namespace dw
