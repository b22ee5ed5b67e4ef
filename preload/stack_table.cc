#include "preload/stack_table.h"

#include <cstring>

#include "preload/os.h"

namespace dw {

namespace {

constexpr uint64_t kMul = 0xFF51AFD7ED558CCDull;

// One step of a lane: xor the frame in, multiply, fold the high half down.
inline uint64_t Step(uint64_t lane, uintptr_t frame) {
  lane = (lane ^ frame) * kMul;
  return lane ^ (lane >> 32);
}

inline uint64_t Rotate(uint64_t value, int bits) {
  return (value << bits) | (value >> (64 - bits));
}

// Inlined into Intern (HashFrames is the same function for tests).
__attribute__((always_inline)) inline uint64_t HashStack(const uintptr_t* frames, uint32_t depth) {
  // Four independent lanes take every fourth frame, so the multiplies of one round overlap
  // instead of waiting on each other: a serial chain over 16 frames costs ~5 cycles per frame,
  // this one a quarter of that. Each lane starts from its own seed, so the same address in two
  // lanes (two frames swapped) gives another hash.
  uint64_t lane0 = 0x9E3779B97F4A7C15ull ^ depth, lane1 = 0xC2B2AE3D27D4EB4Full;
  uint64_t lane2 = 0x165667B19E3779F9ull, lane3 = 0x27D4EB2F165667C5ull;
  uint32_t i = 0;
  for (; i + 4 <= depth; i += 4) {
    lane0 = Step(lane0, frames[i]);
    lane1 = Step(lane1, frames[i + 1]);
    lane2 = Step(lane2, frames[i + 2]);
    lane3 = Step(lane3, frames[i + 3]);
  }
  if (i < depth) lane0 = Step(lane0, frames[i++]);
  if (i < depth) lane1 = Step(lane1, frames[i++]);
  if (i < depth) lane2 = Step(lane2, frames[i]);
  // One multiply finishes it: its top bits depend on every bit of the folded lanes, and the
  // index takes its home slot from the top bits (HomeSlot), so no fold back down is needed.
  const uint64_t hash = (lane0 ^ Rotate(lane1, 16) ^ Rotate(lane2, 32) ^ Rotate(lane3, 48)) * kMul;
  return hash | 1;  // never 0, so a zero hash can mean "unset" to a debugger; HomeSlot skips bit 0
}

}  // namespace

uint64_t HashFrames(const uintptr_t* frames, uint32_t depth) { return HashStack(frames, depth); }

uint64_t HomeSlot(uint64_t hash, uint32_t index_bits) {
  // Two shifts, so that a one-slot index (0 bits) is not a shift by 64.
  return (hash >> 1) >> (63 - index_bits);
}

bool StackTable::Init(uint32_t max_sites, uint32_t max_depth) {
  max_sites_ = max_sites;
  max_depth_ = max_depth;
  record_size_ = (sizeof(Record) + max_depth * sizeof(uintptr_t) + 7) & ~size_t{7};
  uint64_t index_slots = 1;
  while (index_slots < 2ull * max_sites) index_slots <<= 1;  // load factor stays <= 1/2
  index_mask_ = index_slots - 1;
  index_bits_ = static_cast<uint32_t>(__builtin_ctzll(index_slots));
  index_ = static_cast<std::atomic<uint32_t>*>(os::MapPages(index_slots * sizeof(uint32_t)));
  if (index_ == nullptr) return false;
  return records_.Init(record_size_, max_sites, kRecordChunkBits);
}

void StackTable::ReleaseMemory() {
  os::UnmapPages(index_, (index_mask_ + 1) * sizeof(uint32_t));
  index_ = nullptr;
  records_.Release();
  max_sites_ = 0;
}

size_t StackTable::mapped_bytes() const {
  return (index_ != nullptr ? (index_mask_ + 1) * sizeof(uint32_t) : 0) + records_.mapped_bytes();
}

StackTable::Record* StackTable::RecordAt(uint32_t id) const {
  return static_cast<Record*>(records_.Get(id));
}

uint32_t StackTable::TakeId() {
  // Checked before reserving, so a full table stops handing out ids (and can never wrap the
  // 32-bit counter back onto live records).
  const uint32_t limit = mapped_limit_.load(std::memory_order_relaxed);
  const uint32_t end = limit < max_sites_ ? limit : max_sites_;
  if (next_id_.load(std::memory_order_relaxed) >= end) return kNoSite;
  const uint32_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
  if (id >= end) return kNoSite;
  if (records_.Ensure(id) == nullptr) {
    uint32_t seen = mapped_limit_.load(std::memory_order_relaxed);
    while (id < seen && !mapped_limit_.compare_exchange_weak(seen, id, std::memory_order_relaxed)) {
    }
    return kNoSite;
  }
  return id;
}

bool StackTable::Matches(const Record& record, uint64_t hash, const uintptr_t* frames,
                         uint32_t depth) const {
  if (record.hash != hash || record.depth != depth) return false;
  // Inline and branch-free over the frames: a stack that reaches here almost always matches,
  // so there is no early exit worth a branch per frame, nor a call to memcmp.
  uintptr_t differ = 0;
  for (uint32_t i = 0; i < depth; ++i) differ |= record.frames[i] ^ frames[i];
  return differ == 0;
}

uint32_t StackTable::Intern(const uintptr_t* frames, uint32_t depth, uint16_t module_generation) {
  if (index_ == nullptr) return kNoSite;  // released
  if (depth > max_depth_) depth = max_depth_;
  const uint64_t hash = HashStack(frames, depth);
  uint32_t mine = kNoSite;  // our record, written but not yet linked into the index
  for (uint64_t slot = HomeSlot(hash, index_bits_);; slot = (slot + 1) & index_mask_) {
    uint32_t id = index_[slot].load(std::memory_order_acquire);
    if (id == kNoSite) {
      if (mine == kNoSite) {
        mine = TakeId();
        if (mine == kNoSite) {
          overflowed_.fetch_add(1, std::memory_order_relaxed);
          return kNoSite;
        }
        Record* record = RecordAt(mine);
        record->depth = static_cast<uint16_t>(depth);
        record->module_generation = module_generation;
        record->hash = hash;
        memcpy(record->frames, frames, depth * sizeof(uintptr_t));
        // Published before it becomes reachable from the index, so every id a reader can find
        // through the index or a counter refers to a complete record.
        record->state.store(kLive, std::memory_order_release);
      }
      if (index_[slot].compare_exchange_strong(id, mine, std::memory_order_acq_rel)) return mine;
      // Lost the slot: `id` now holds the winner; compare with it below.
    }
    if (id != mine && Matches(*RecordAt(id), hash, frames, depth)) {
      if (mine != kNoSite) RecordAt(mine)->state.store(kDuplicate, std::memory_order_release);
      return id;
    }
  }
}

uint32_t StackTable::end_id() const {
  uint32_t end = next_id_.load(std::memory_order_acquire);
  return end < max_sites_ ? end : max_sites_;
}

bool StackTable::Published(uint32_t id) const {
  if (id == kNoSite) return false;
  const Record* record = RecordAt(id);  // null past max_sites or in a chunk never mapped
  return record != nullptr && record->state.load(std::memory_order_acquire) != kEmpty;
}

bool StackTable::IsDuplicate(uint32_t id) const {
  return RecordAt(id)->state.load(std::memory_order_acquire) == kDuplicate;
}

uint32_t StackTable::Depth(uint32_t id) const { return RecordAt(id)->depth; }
uint16_t StackTable::ModuleGeneration(uint32_t id) const { return RecordAt(id)->module_generation; }
const uintptr_t* StackTable::Frames(uint32_t id) const { return RecordAt(id)->frames; }

}  // namespace dw
