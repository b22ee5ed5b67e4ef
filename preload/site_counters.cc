#include "preload/site_counters.h"

namespace dw {

constinit SiteCounters::Cell SiteCounters::sink_{};

bool SiteCounters::Init(uint32_t max_sites) { return cells_.Init(max_sites); }

SiteCounters::Snapshot SiteCounters::Read(uint32_t site) const {
  const Cell* cell = cells_.Get(site);
  if (cell == nullptr) return Snapshot{0, 0, 0, 0};
  // Released is read first, with acquire order, so a snapshot never shows more releases than
  // acquisitions (live values never go negative).
  Snapshot snapshot;
  snapshot.released = cell->released.load(std::memory_order_acquire);
  snapshot.released_bytes = cell->released_bytes.load(std::memory_order_relaxed);
  snapshot.acquired = cell->acquired.load(std::memory_order_relaxed);
  snapshot.acquired_bytes = cell->acquired_bytes.load(std::memory_order_relaxed);
  return snapshot;
}

}  // namespace dw
