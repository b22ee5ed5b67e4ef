#include "preload/site_counters.h"

#include "preload/os.h"

namespace dw {

bool SiteCounters::Init(uint32_t max_sites) {
  cells_ = static_cast<Cell*>(os::MapPages(sizeof(Cell) * max_sites));
  max_sites_ = max_sites;
  return cells_ != nullptr;
}

SiteCounters::Snapshot SiteCounters::Read(uint32_t site) const {
  const Cell& cell = cells_[site];
  // Released is read first, with acquire order, so a snapshot never shows more releases than
  // acquisitions (live values never go negative).
  Snapshot snapshot;
  snapshot.released = cell.released.load(std::memory_order_acquire);
  snapshot.released_bytes = cell.released_bytes.load(std::memory_order_relaxed);
  snapshot.acquired = cell.acquired.load(std::memory_order_relaxed);
  snapshot.acquired_bytes = cell.acquired_bytes.load(std::memory_order_relaxed);
  return snapshot;
}

}  // namespace dw
