// pointer_table.h: the live-resource table, from a resource key (a heap address) to its site
// and size.
//
// Design: a stack of levels, each an array of 8-slot buckets (two cache lines). A key may sit in
// any slot of its bucket, so a lookup scans one bucket per level and never needs tombstones:
// erasing just clears the slot, and the table never fills with dead entries under churn. When a
// key's bucket is full on every level, a new level twice the size of the last is mapped. Keys
// live in the newest levels first, so most operations touch one bucket.
//
// Thread-safety: lock-free. Insert/Erase/BeginMove/EndMove may run concurrently on any keys; a
// given key is only ever operated on by the thread that owns the resource (the allocator never
// hands out a live address twice). Allocation: none, except mapping a new level (rare).
// Safe inside a hook: yes.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace dw {

class PointerTable {
 public:
  // Site id (24 bits) and size (40 bits), packed in one word so that a slot is 16 bytes.
  struct Entry {
    uint32_t site;
    uint64_t size;
  };
  static constexpr uint64_t kMaxSize = (uint64_t{1} << 40) - 1;
  static constexpr uint32_t kMaxSite = (1u << 24) - 1;

  // Maps the first level (`initial_buckets`, a power of two). False if mapping failed.
  bool Init(uint32_t initial_buckets);

  // Adds a key that is not in the table. False if no level had room and none could be mapped.
  // pre: key != 0 and key is even (heap addresses are aligned).
  bool Insert(uintptr_t key, Entry entry);
  // Removes the key; returns false if it is not present.
  bool Erase(uintptr_t key, Entry* erased);

  // Reads the key's entry; false if absent.
  bool Lookup(uintptr_t key, Entry* entry) const;
  // Replaces the key's entry with update(old) atomically (a CAS loop on the value word), and
  // returns the entry it replaced. False if the key is absent. `update` may run several times.
  template <typename Update>
  bool UpdateEntry(uintptr_t key, Update update, Entry* previous) {
    Slot* slot = Find(key);
    if (slot == nullptr) return false;
    uint64_t value = slot->value.load(std::memory_order_acquire);
    for (;;) {
      Entry old = Unpack(value);
      if (slot->value.compare_exchange_weak(value, Pack(update(old)), std::memory_order_acq_rel)) {
        *previous = old;
        return true;
      }
    }
  }
  // Calls visit(key, entry) for every live key. For the census thread: a key inserted or erased
  // meanwhile may or may not be seen.
  template <typename Visit>
  void ForEach(Visit visit) const {
    size_t count = level_count_.load(std::memory_order_acquire);
    for (size_t level = 0; level < count; ++level) {
      size_t buckets = size_t{1} << levels_[level].bucket_bits;
      for (size_t b = 0; b < buckets; ++b) {
        for (const Slot& slot : levels_[level].buckets[b].slots) {
          uintptr_t key = slot.key.load(std::memory_order_acquire) & ~kMovingBit;
          if (key != 0) visit(key, Unpack(slot.value.load(std::memory_order_acquire)));
        }
      }
    }
  }

  // realloc support. BeginMove marks the key's slot as "moving" so that, while the real realloc
  // runs, the same address freed and handed to another thread is inserted as a separate entry.
  // Returns an opaque handle (nullptr if the key is absent).
  void* BeginMove(uintptr_t key, Entry* entry);
  // Ends a move: `released` true removes the old entry (the block was freed or moved);
  // false restores it (realloc failed and the old block is still valid).
  void EndMove(void* handle, bool released);

  // In a fork child: a thread that was adding a level at fork time does not exist there, so
  // its claim on growth is dropped (the level it was mapping, if any, is simply not used).
  void AfterForkChild() { growing_.store(false, std::memory_order_relaxed); }

  size_t levels() const { return level_count_.load(std::memory_order_acquire); }
  // Approximate number of live keys; for tests and the census.
  size_t CountForTesting() const;

 private:
  static constexpr int kSlotsPerBucket = 8;
  static constexpr int kMaxLevels = 24;
  static constexpr uintptr_t kMovingBit = 1;

  struct Slot {
    std::atomic<uintptr_t> key;
    std::atomic<uint64_t> value;
  };
  struct alignas(128) Bucket {
    Slot slots[kSlotsPerBucket];
  };
  struct Level {
    Bucket* buckets;
    uint32_t bucket_bits;
  };

  static uint64_t Pack(Entry entry);
  static Entry Unpack(uint64_t value);
  Bucket& BucketFor(const Level& level, uintptr_t key) const;
  Slot* Find(uintptr_t key) const;
  bool AddLevel(size_t seen_levels);

  Level levels_[kMaxLevels] = {};
  std::atomic<size_t> level_count_{0};
  std::atomic<bool> growing_{false};
};

}  // namespace dw
