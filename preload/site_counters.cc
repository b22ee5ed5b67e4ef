#include "preload/site_counters.h"

#include "preload/os.h"

namespace dw {

constinit SiteCounters::Cell SiteCounters::sink_{};

namespace {

size_t ChangedBytes(uint32_t max_sites) {
  return (static_cast<size_t>(max_sites) + 63) / 64 * sizeof(uint64_t);
}

}  // namespace

bool SiteCounters::Init(uint32_t max_sites) {
  if (!cells_.Init(max_sites)) return false;
  changed_ = static_cast<std::atomic<uint64_t>*>(os::MapPages(ChangedBytes(max_sites)));
  return changed_ != nullptr;
}

void SiteCounters::ReleaseMemory() {
  os::UnmapPages(changed_, ChangedBytes(max_sites()));
  changed_ = nullptr;
  cells_.Release();
}

void SiteCounters::ClearChanged() const {
  if (changed_ == nullptr) return;
  for (uint32_t index = 0; index < (max_sites() + 63) / 64; ++index) {
    if (changed_[index].load(std::memory_order_relaxed) != 0) {
      changed_[index].store(0, std::memory_order_seq_cst);
    }
  }
}

SiteCounters::Snapshot SiteCounters::Read(uint32_t site) const {
  const Cell* cell = cells_.Get(site);
  if (cell == nullptr) return Snapshot{0, 0, 0, 0};
  // Released is read first, so a snapshot never shows more releases than acquisitions (live
  // values never go negative). Sequentially consistent: see "changed" in the header.
  Snapshot snapshot;
  snapshot.released = cell->released.load(std::memory_order_seq_cst);
  snapshot.released_bytes = cell->released_bytes.load(std::memory_order_seq_cst);
  snapshot.acquired = cell->acquired.load(std::memory_order_seq_cst);
  snapshot.acquired_bytes = cell->acquired_bytes.load(std::memory_order_seq_cst);
  return snapshot;
}

}  // namespace dw
