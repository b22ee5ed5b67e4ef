// pointer_table.h: the live-resource table, from a resource key (a heap address) to its site
// and size.
//
// Design: a stack of levels, each an array of 8-slot buckets (two cache lines). A key may sit in
// any slot of its bucket, so a lookup scans one bucket per level and never needs tombstones:
// erasing just clears the slot, and the table never fills with dead entries under churn. When a
// key's bucket is full on every level, a new level twice the size of the last is mapped. Keys
// live in the newest levels first, so most lookups touch one bucket.
//
// Growth never blocks: every thread that finds no room maps the next level itself and offers it
// with a CAS; the first offer is used and the others are unmapped. A thread stalled in the
// middle of growing (preempted, stopped by a debugger, gone in a fork child) therefore holds
// nobody up, and an insert fails only when the next level cannot be mapped at all.
//
// An insert of a key that is already live replaces the old entry and returns it: for heap
// addresses that means the block was freed where the shim could not see it (a "missed free").
// The key is looked for only where the insert reads anyway: the newest level, older ones only
// while the newer are full, and in a bucket the cache lines up to the first free slot.
// Allocators reuse a freed address soon, usually before the table grows again or the slots
// before it empty, so that finds most stale keys; one left elsewhere stays.
//
// Thread-safety: lock-free. Insert/Erase/BeginMove/EndMove may run concurrently on any keys; a
// given key is only ever operated on by the thread that owns the resource (the allocator never
// hands out a live address twice). ForEach may run meanwhile and sees every key with its own
// entry. Allocation: none, except mapping a new level (rare). Safe inside a hook: yes, except
// Init() and ReleaseMemory().
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
  // Unmaps every level (a start that failed). Afterwards inserts fail (kFull) and lookups find
  // nothing; nothing is mapped again.
  void ReleaseMemory();

  enum class InsertResult { kInserted, kReplaced, kFull };
  // Adds the key with `entry`. If the key was found live (see above), its entry is replaced and
  // the old one stored in `*replaced` (kReplaced). kFull only if no level had room and the next one
  // could not be mapped. pre: key != 0 and key is even (heap addresses are aligned).
  InsertResult Insert(uintptr_t key, Entry entry, Entry* replaced);
  // As above, for callers that know the key is not live: true unless the table is full.
  bool Insert(uintptr_t key, Entry entry) {
    Entry replaced;
    return Insert(key, entry, &replaced) != InsertResult::kFull;
  }
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
      const Bucket* buckets = levels_[level].load(std::memory_order_acquire);
      for (size_t b = 0; b < BucketCount(level); ++b) {
        for (const Slot& slot : buckets[b].slots) {
          Entry entry;
          uintptr_t key = ReadSlot(slot, &entry);
          if (key != 0) visit(key, entry);
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

  // In a fork child. Nothing to do: growth holds no claim that a vanished thread could keep
  // (a level it had offered but not counted is counted by the next thread that needs room).
  void AfterForkChild() {}

  size_t levels() const { return level_count_.load(std::memory_order_acquire); }
  // Approximate number of live keys; for tests and the census.
  size_t CountForTesting() const;
  // Bytes of the levels mapped now; for tests of the start-up reservation.
  size_t mapped_bytes() const;
  // Tests: `hook` runs in every thread that grows the table, after it mapped the next level and
  // before it offers it, so a test can stall a grower there. nullptr removes it.
  static void SetGrowthHookForTesting(void (*hook)());

 private:
  static constexpr int kSlotsPerBucket = 8;
  static constexpr int kSlotsPerLine = 4;  // 16-byte slots in a 64-byte cache line
  static constexpr int kMaxLevels = 24;
  static constexpr uintptr_t kMovingBit = 1;
  // A slot being filled: claimed (so no other insert takes it) but its value not yet written.
  // It reads as key 0 with the moving bit, which no lookup matches and ForEach skips.
  static constexpr uintptr_t kClaimed = kMovingBit;

  struct Slot {
    std::atomic<uintptr_t> key;
    std::atomic<uint64_t> value;
  };
  struct alignas(128) Bucket {
    Slot slots[kSlotsPerBucket];
  };

  static uint64_t Pack(Entry entry);
  static Entry Unpack(uint64_t value);
  // The slot's key without the moving bit (0 if empty or being filled), and its entry. The key
  // is read again after the value: a slot emptied and refilled meanwhile is reported empty
  // rather than as one key with another key's entry.
  static uintptr_t ReadSlot(const Slot& slot, Entry* entry) {
    uintptr_t key = slot.key.load(std::memory_order_acquire) & ~kMovingBit;
    if (key == 0) return 0;
    *entry = Unpack(slot.value.load(std::memory_order_acquire));
    return (slot.key.load(std::memory_order_relaxed) & ~kMovingBit) == key ? key : 0;
  }
  size_t BucketCount(size_t level) const { return size_t{1} << (first_bits_ + level); }
  size_t LevelBytes(size_t level) const { return sizeof(Bucket) * BucketCount(level); }
  Bucket& BucketFor(size_t level, uintptr_t key) const;
  Slot* Find(uintptr_t key) const;
  Slot* FindInline(uintptr_t key) const;
  bool Grow(size_t seen_levels);

  std::atomic<Bucket*> levels_[kMaxLevels] = {};
  std::atomic<size_t> level_count_{0};
  uint32_t first_bits_ = 0;
};

}  // namespace dw
