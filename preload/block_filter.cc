#include "preload/block_filter.h"

#include "preload/os.h"

namespace dw {

bool BlockFilter::Init() {
  counts_ = static_cast<std::atomic<uint8_t>*>(os::MapPages(kCounts));
  return counts_ != nullptr;
}

void BlockFilter::Release() {
  os::UnmapPages(counts_, kCounts);
  counts_ = nullptr;
}

void BlockFilter::Raise(std::atomic<uint8_t>& count) {
  uint8_t seen = count.load(std::memory_order_relaxed);
  while (seen != kSaturated &&
         !count.compare_exchange_weak(seen, seen + 1, std::memory_order_relaxed)) {
  }
}

void BlockFilter::Lower(std::atomic<uint8_t>& count) {
  uint8_t seen = count.load(std::memory_order_relaxed);
  // A CAS rather than a subtraction: a count saturated meanwhile must not be lowered.
  while (seen != kSaturated && seen != 0 &&
         !count.compare_exchange_weak(seen, seen - 1, std::memory_order_relaxed)) {
  }
}

}  // namespace dw
