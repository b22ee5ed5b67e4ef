// stack_table.h: interns call stacks into small, stable site ids.
//
// Each live resource keeps only a 32-bit site id; the stack behind it is stored once here. The
// table is insert-only: a stack, once interned, keeps its id for the life of the process, which
// is what lets the census thread send each definition once per connection.
//
// Memory: the hash index (4 bytes per slot, two slots per possible site) is mapped at Init; the
// records are mapped 1024 at a time as ids reach them (LazyChunks), so the address space reserved
// follows the number of distinct stacks, not DRIFTWATCH_MAX_SITES.
//
// Thread-safety: Intern() is lock-free and may race with itself and with readers. Allocation:
// none from the heap; Init() maps pages, and Intern() maps a chunk of records once per 1024 ids.
// Safe inside a hook: Intern() and the readers, yes; Init() and ReleaseMemory(), no.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "preload/lazy_array.h"

namespace dw {

class StackTable {
 public:
  // Site id 0 is reserved: "unattributed" (no stack, or the table is full).
  static constexpr uint32_t kNoSite = 0;

  // Maps room for `max_sites` stacks of up to `max_depth` frames. False if mapping failed.
  bool Init(uint32_t max_sites, uint32_t max_depth);
  // Unmaps everything (a start that failed). Afterwards Intern() returns kNoSite and no id is
  // published.
  void ReleaseMemory();

  // Returns the id for this stack, interning it on first sight, or kNoSite when the table is
  // full or its records cannot be mapped (counted in overflowed()). `depth` is clamped to
  // max_depth(). `module_generation` is how many dlclose() unloads had happened when the stack was
  // captured (UnloadedModules), kept with a new stack so its addresses can be matched to the
  // modules mapped at the time.
  uint32_t Intern(const uintptr_t* frames, uint32_t depth, uint16_t module_generation = 0);

  // Reader side (census thread). ids below end_id() have been handed out; a definition is
  // readable once Published(id) is true. Some ids are never published: they lost an insert race
  // and hold a duplicate (IsDuplicate(id)).
  uint32_t end_id() const;
  bool Published(uint32_t id) const;
  bool IsDuplicate(uint32_t id) const;
  uint32_t Depth(uint32_t id) const;
  uint16_t ModuleGeneration(uint32_t id) const;
  const uintptr_t* Frames(uint32_t id) const;

  uint32_t max_sites() const { return max_sites_; }
  uint32_t max_depth() const { return max_depth_; }
  uint64_t overflowed() const { return overflowed_.load(std::memory_order_relaxed); }
  // Bytes mapped now; for tests of the start-up reservation.
  size_t mapped_bytes() const;

 private:
  static constexpr uint32_t kRecordChunkBits = 10;  // 1024 records (144 KiB at depth 16)
  enum RecordState : uint32_t { kEmpty = 0, kLive = 1, kDuplicate = 2 };
  struct Record {
    std::atomic<uint32_t> state;
    uint16_t depth;
    uint16_t module_generation;
    uint64_t hash;
    uintptr_t frames[];  // max_depth_ entries
  };

  Record* RecordAt(uint32_t id) const;
  bool Matches(const Record& record, uint64_t hash, const uintptr_t* frames, uint32_t depth) const;

  uint32_t TakeId();

  uint32_t max_sites_ = 0;
  uint32_t max_depth_ = 0;
  size_t record_size_ = 0;
  uint64_t index_mask_ = 0;
  uint32_t index_bits_ = 0;                 // index_mask_ + 1 == 1 << index_bits_
  std::atomic<uint32_t>* index_ = nullptr;  // open addressing, linear probing, never deleted
  LazyChunks records_;
  std::atomic<uint32_t> next_id_{1};
  // The first id whose records could not be mapped (ulimit -v reached): no id from there on is
  // handed out, as if the table were full, so a failing mmap is not retried on every new stack.
  // An id already taken in that chunk is never published; the census leaves it pending.
  std::atomic<uint32_t> mapped_limit_{~0u};
  std::atomic<uint64_t> overflowed_{0};
};

// Hash of a stack, and its home slot in an index of 2^index_bits slots (from the hash's top
// bits); exposed for tests.
uint64_t HashFrames(const uintptr_t* frames, uint32_t depth);
uint64_t HomeSlot(uint64_t hash, uint32_t index_bits);

}  // namespace dw
