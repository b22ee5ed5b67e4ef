#include "preload/pointer_table.h"

#include "preload/os.h"

namespace dw {
namespace {

// Called by a growing thread between mapping a level and offering it; tests stall growth here.
std::atomic<void (*)()> g_growth_hook{nullptr};

}  // namespace

void PointerTable::SetGrowthHookForTesting(void (*hook)()) {
  g_growth_hook.store(hook, std::memory_order_release);
}

uint64_t PointerTable::Pack(Entry entry) {
  uint64_t size = entry.size > kMaxSize ? kMaxSize : entry.size;
  return (uint64_t{entry.site & kMaxSite} << 40) | size;
}

PointerTable::Entry PointerTable::Unpack(uint64_t value) {
  return Entry{static_cast<uint32_t>(value >> 40), value & kMaxSize};
}

PointerTable::Bucket& PointerTable::BucketFor(size_t level, uintptr_t key) const {
  // Fibonacci hashing of the address without its always-zero low bits.
  // Two shifts, so that a one-bucket level (0 bits) is not a shift by 64.
  uint64_t hash = (static_cast<uint64_t>(key) >> 4) * 0x9E3779B97F4A7C15ull;
  return levels_[level].load(std::memory_order_relaxed)[(hash >> 1) >> (63 - first_bits_ - level)];
}

bool PointerTable::Init(uint32_t initial_buckets) {
  first_bits_ = 0;
  while ((1u << first_bits_) < initial_buckets) ++first_bits_;
  auto* buckets = static_cast<Bucket*>(os::MapPages(LevelBytes(0)));
  if (buckets == nullptr) return false;
  levels_[0].store(buckets, std::memory_order_relaxed);
  level_count_.store(1, std::memory_order_release);
  return true;
}

void PointerTable::ReleaseMemory() {
  for (size_t level = 0; level < kMaxLevels; ++level) {
    os::UnmapPages(levels_[level].exchange(nullptr, std::memory_order_relaxed), LevelBytes(level));
  }
  level_count_.store(0, std::memory_order_release);
}

bool PointerTable::Grow(size_t seen_levels) {
  // Lock-free: this thread maps the next level unless one was already offered, offers it with a
  // CAS, then makes sure the level count covers whichever offer won. No thread ever waits for
  // another one to finish growing. Returns false only if no next level exists or can be mapped.
  // Level 0 is Init's: none before it, or after ReleaseMemory.
  if (seen_levels == 0 || seen_levels >= kMaxLevels) return false;
  std::atomic<Bucket*>& next = levels_[seen_levels];
  if (next.load(std::memory_order_acquire) == nullptr) {
    const size_t bytes = LevelBytes(seen_levels);
    auto* mine = static_cast<Bucket*>(os::MapPages(bytes));
    if (mine == nullptr) return next.load(std::memory_order_acquire) != nullptr;
    if (auto* hook = g_growth_hook.load(std::memory_order_acquire)) hook();
    Bucket* expected = nullptr;
    if (!next.compare_exchange_strong(expected, mine, std::memory_order_acq_rel)) {
      os::UnmapPages(mine, bytes);
    }
  }
  // The level pointer is stored before the count that publishes it (release), so a thread that
  // reads the new count finds the level.
  size_t expected = seen_levels;
  level_count_.compare_exchange_strong(expected, seen_levels + 1, std::memory_order_acq_rel);
  return true;
}

PointerTable::InsertResult PointerTable::Insert(uintptr_t key, Entry entry, Entry* replaced) {
  const uint64_t value = Pack(entry);
  // Each round either stores the key, or finds that another thread changed the table (took the
  // free slot first, or added a level), or grows the table itself: no round waits for another
  // thread, and the loop ends unless other threads keep succeeding.
  for (;;) {
    const size_t count = level_count_.load(std::memory_order_acquire);
    // Newest level first, where lookups look first; the scan stops at the first level with
    // room. Each cache line of a bucket that is read is searched whole for the key itself, left
    // live by a missed free; a line beyond the first free slot is not read for that, as it
    // would cost a cache miss on every insert (and a full scan of every level, 3-5 times the
    // table's cost at a million live blocks).
    Slot* free_slot = nullptr;
    for (size_t level = count; level-- > 0 && free_slot == nullptr;) {
      Bucket& bucket = BucketFor(level, key);
      for (int i = 0; i < kSlotsPerBucket; ++i) {
        Slot& slot = bucket.slots[i];
        const uintptr_t held = slot.key.load(std::memory_order_acquire);
        if (held == key) {
          *replaced = Unpack(slot.value.exchange(value, std::memory_order_acq_rel));
          return InsertResult::kReplaced;
        }
        if (held == 0 && free_slot == nullptr) free_slot = &slot;
        if (free_slot != nullptr && i % kSlotsPerLine == kSlotsPerLine - 1) break;
      }
    }
    if (free_slot != nullptr) {
      uintptr_t expected = 0;
      if (free_slot->key.compare_exchange_strong(expected, kClaimed, std::memory_order_acq_rel)) {
        // Value before key, both with release order: a reader that finds the key finds its value
        // (and one that finds this value sees that the slot's key changed; see ReadSlot).
        free_slot->value.store(value, std::memory_order_release);
        free_slot->key.store(key, std::memory_order_release);
        return InsertResult::kInserted;
      }
      continue;  // another insert took the slot: look again
    }
    if (!Grow(count)) return InsertResult::kFull;
  }
}

// Find's body, inlined into Erase and BeginMove so that a free's one probe is one function.
__attribute__((always_inline)) inline PointerTable::Slot* PointerTable::FindInline(
    uintptr_t key) const {
  size_t count = level_count_.load(std::memory_order_acquire);
  for (size_t level = count; level-- > 0;) {
    for (Slot& slot : BucketFor(level, key).slots) {
      if (slot.key.load(std::memory_order_acquire) == key) return &slot;
    }
  }
  return nullptr;
}

PointerTable::Slot* PointerTable::Find(uintptr_t key) const { return FindInline(key); }

bool PointerTable::Lookup(uintptr_t key, Entry* entry) const {
  const Slot* slot = Find(key);
  if (slot == nullptr) return false;
  *entry = Unpack(slot->value.load(std::memory_order_acquire));
  return true;
}

bool PointerTable::Erase(uintptr_t key, Entry* erased) {
  Slot* slot = FindInline(key);
  if (slot == nullptr) return false;
  // The slot is claimed before its value is read, and emptied after: if another thread (the
  // census releasing a handle) erased the key and the slot was refilled with the same key in
  // between, the value read is the one of the entry this erase removes.
  uintptr_t expected = key;
  if (!slot->key.compare_exchange_strong(expected, kClaimed, std::memory_order_acq_rel)) {
    return false;
  }
  *erased = Unpack(slot->value.load(std::memory_order_relaxed));
  slot->key.store(0, std::memory_order_release);
  return true;
}

void* PointerTable::BeginMove(uintptr_t key, Entry* entry) {
  Slot* slot = FindInline(key);
  if (slot == nullptr) return nullptr;
  uintptr_t expected = key;
  if (!slot->key.compare_exchange_strong(expected, key | kMovingBit, std::memory_order_acq_rel)) {
    return nullptr;
  }
  *entry = Unpack(slot->value.load(std::memory_order_relaxed));  // read once the slot is ours
  return slot;
}

void PointerTable::EndMove(void* handle, bool released) {
  auto* slot = static_cast<Slot*>(handle);
  uintptr_t moving = slot->key.load(std::memory_order_relaxed);
  slot->key.store(released ? 0 : (moving & ~kMovingBit), std::memory_order_release);
}

size_t PointerTable::CountForTesting() const {
  size_t live = 0;
  ForEach([&](uintptr_t, Entry) { ++live; });
  return live;
}

size_t PointerTable::mapped_bytes() const {
  size_t bytes = 0;
  for (size_t level = 0; level < kMaxLevels; ++level) {
    if (levels_[level].load(std::memory_order_acquire) != nullptr) bytes += LevelBytes(level);
  }
  return bytes;
}

}  // namespace dw
