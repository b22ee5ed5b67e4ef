#include "preload/pointer_table.h"

#include <sched.h>

#include "preload/os.h"

namespace dw {

uint64_t PointerTable::Pack(Entry entry) {
  uint64_t size = entry.size > kMaxSize ? kMaxSize : entry.size;
  return (uint64_t{entry.site & kMaxSite} << 40) | size;
}

PointerTable::Entry PointerTable::Unpack(uint64_t value) {
  return Entry{static_cast<uint32_t>(value >> 40), value & kMaxSize};
}

PointerTable::Bucket& PointerTable::BucketFor(const Level& level, uintptr_t key) const {
  // Fibonacci hashing of the address without its always-zero low bits.
  uint64_t hash = (static_cast<uint64_t>(key) >> 4) * 0x9E3779B97F4A7C15ull;
  return level.buckets[hash >> (64 - level.bucket_bits)];
}

bool PointerTable::Init(uint32_t initial_buckets) {
  uint32_t bits = 0;
  while ((1u << bits) < initial_buckets) ++bits;
  auto* buckets = static_cast<Bucket*>(os::MapPages(sizeof(Bucket) << bits));
  if (buckets == nullptr) return false;
  levels_[0] = Level{buckets, bits};
  level_count_.store(1, std::memory_order_release);
  return true;
}

bool PointerTable::AddLevel(size_t seen_levels) {
  // One thread maps the next level; the others retry their insert meanwhile (returning true
  // means "try again"). The level array entry is written before level_count_ publishes it.
  if (growing_.exchange(true, std::memory_order_acquire)) return true;
  bool ok = true;
  if (level_count_.load(std::memory_order_acquire) == seen_levels) {
    if (seen_levels >= kMaxLevels) {
      ok = false;
    } else {
      uint32_t bits = levels_[seen_levels - 1].bucket_bits + 1;
      auto* buckets = static_cast<Bucket*>(os::MapPages(sizeof(Bucket) << bits));
      if (buckets == nullptr) {
        ok = false;
      } else {
        levels_[seen_levels] = Level{buckets, bits};
        level_count_.store(seen_levels + 1, std::memory_order_release);
      }
    }
  }
  growing_.store(false, std::memory_order_release);
  return ok;
}

bool PointerTable::Insert(uintptr_t key, Entry entry) {
  const uint64_t value = Pack(entry);
  // Each round either finds room or grows the table; while another thread maps the next level,
  // this one yields. The bound makes a stuck grower cost a counted overflow, never a hang.
  for (int round = 0; round < 1000; ++round) {
    size_t count = level_count_.load(std::memory_order_acquire);
    // Newest (largest) level first: it has the most room.
    for (size_t level = count; level-- > 0;) {
      Bucket& bucket = BucketFor(levels_[level], key);
      for (Slot& slot : bucket.slots) {
        uintptr_t expected = 0;
        if (slot.key.load(std::memory_order_relaxed) == 0 &&
            slot.key.compare_exchange_strong(expected, key, std::memory_order_acq_rel)) {
          slot.value.store(value, std::memory_order_release);
          return true;
        }
      }
    }
    if (!AddLevel(count)) return false;
    if (level_count_.load(std::memory_order_acquire) == count) sched_yield();
  }
  return false;
}

PointerTable::Slot* PointerTable::Find(uintptr_t key) const {
  size_t count = level_count_.load(std::memory_order_acquire);
  for (size_t level = count; level-- > 0;) {
    Bucket& bucket = BucketFor(levels_[level], key);
    for (Slot& slot : bucket.slots) {
      if (slot.key.load(std::memory_order_acquire) == key) return &slot;
    }
  }
  return nullptr;
}

bool PointerTable::Lookup(uintptr_t key, Entry* entry) const {
  const Slot* slot = Find(key);
  if (slot == nullptr) return false;
  *entry = Unpack(slot->value.load(std::memory_order_acquire));
  return true;
}

bool PointerTable::Erase(uintptr_t key, Entry* erased) {
  Slot* slot = Find(key);
  if (slot == nullptr) return false;
  uint64_t value = slot->value.load(std::memory_order_acquire);
  uintptr_t expected = key;
  if (!slot->key.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) return false;
  *erased = Unpack(value);
  return true;
}

void* PointerTable::BeginMove(uintptr_t key, Entry* entry) {
  Slot* slot = Find(key);
  if (slot == nullptr) return nullptr;
  uint64_t value = slot->value.load(std::memory_order_acquire);
  uintptr_t expected = key;
  if (!slot->key.compare_exchange_strong(expected, key | kMovingBit, std::memory_order_acq_rel)) {
    return nullptr;
  }
  *entry = Unpack(value);
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

}  // namespace dw
