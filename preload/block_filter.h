// block_filter.h: sampled mode's quick answer to "could this freed block be a sampled one?".
//
// In sampled mode most blocks are never recorded, yet every free must find the few that were.
// A lookup in the live-block table for each free would cost a scan of a bucket per level; this
// counting filter answers most frees with one byte read: a count per granule of address
// space, raised when a sampled block is recorded and lowered when it is released. Zero means
// "certainly not sampled"; non-zero means "look in the table". A count that reaches 255 stays there
// (a saturated count can no longer be lowered safely), which only costs lookups, never a miss.
//
// The count is per 4 KiB granule of address space, not per hashed address: frees cluster where
// the program's memory is hot, so the counts they read stay in cache (a hashed index made every
// free a cache miss, the most expensive instruction of sampled mode). A granule shared with a
// sampled block costs a table lookup; at the default 512 KiB mean, that is about 1 free in 130.
// Granules 256 MiB apart share a count, which costs lookups too, never a miss.
//
// Thread-safety: lock-free; Add/Remove/MayHold may run concurrently. A free happens after its
// block's allocation (the program cannot free a block it has not received), so the raise is
// always visible to it. Allocation: Init() maps the counts (64 KiB, small enough to stay in
// the core's cache); nothing else. Safe inside a hook: yes, except Init() and
// Release().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace dw {

class BlockFilter {
 public:
  bool Init();
  void Release();

  // Both do nothing while the filter is not mapped (exact mode), inline so that costs a compare.
  void Add(uintptr_t block) {
    if (counts_ != nullptr) Raise(counts_[Index(block)]);
  }
  void Remove(uintptr_t block) {
    if (counts_ != nullptr) Lower(counts_[Index(block)]);
  }
  bool MayHold(uintptr_t block) const { return counts_ != nullptr && MayHold(counts_, block); }
  // The same test on the counts array, for a caller that keeps its address (HeapGate).
  static bool MayHold(const std::atomic<uint8_t>* counts, uintptr_t block) {
    return counts[Index(block)].load(std::memory_order_relaxed) != 0;
  }
  const std::atomic<uint8_t>* counts() const { return counts_; }
  size_t mapped_bytes() const { return counts_ != nullptr ? kCounts : 0; }

 private:
  static void Raise(std::atomic<uint8_t>& count);
  static void Lower(std::atomic<uint8_t>& count);

  static constexpr int kBits = 16;
  static constexpr int kGranuleBits = 12;
  static constexpr size_t kCounts = size_t{1} << kBits;
  static constexpr uint8_t kSaturated = 255;

  static size_t Index(uintptr_t block) {
    return static_cast<size_t>(block >> kGranuleBits) & (kCounts - 1);
  }

  std::atomic<uint8_t>* counts_ = nullptr;
};

}  // namespace dw
