// heap_gate.h: the test every malloc and free passes before the shim does any work for it.
//
// It runs on every allocation, so the hooks inline it (events.h): in sampled mode an allocation
// that is not sampled costs one thread-local subtraction, decided before the real call so that
// the hook is a plain tail call, and a free of a block that was certainly never sampled costs
// one byte read (BlockFilter). Only what passes the gate reaches the heap tracker.
//
// A fork child's census thread starts one interval after the fork, from a hook (Reporter's
// deferred start). In sampled mode few allocations pass the gate, so while that start is
// pending (the reporter's word is not 0) every allocation is let through to check it.
//
// Thread-safety: Init() once before tracking starts; the rest lock-free, on any thread.
// Allocation: none. Safe inside a hook: yes.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "preload/block_filter.h"
#include "preload/heap_sampler.h"

namespace dw {

class HeapGate {
 public:
  // `filter`: the heap tracker's filter of sampled blocks (sampled mode), else null.
  // `start_pending`: non-zero while the reporter's deferred start is pending (Reporter).
  void Init(const HeapSampler& sampler, const BlockFilter* filter,
            const std::atomic<uint64_t>* start_pending) {
    sampler_ = sampler;
    // The counts themselves, not the filter: one dependent load less on every free.
    filter_counts_ = filter != nullptr ? filter->counts() : nullptr;
    start_pending_ = start_pending;
  }

  enum class Pass { kSkip, kRecord, kCheckStartOnly };
  Pass Allocation(SampleCountdown& countdown, size_t size) const {
    if (!sampler_.sampling() || sampler_.Take(countdown, size)) return Pass::kRecord;
    return start_pending_->load(std::memory_order_relaxed) != 0 ? Pass::kCheckStartOnly
                                                                : Pass::kSkip;
  }
  // Asked before the real allocation is made: true when it certainly will not be recorded (an
  // unsampled allocation in sampled mode, with no deferred start to check), having counted it
  // against the countdown. The hook then forwards it as a tail call, with no guard. False
  // leaves everything to Allocation() after the call.
  bool SkipsAllocation(SampleCountdown& countdown, size_t size) const {
    return sampler_.sampling() && start_pending_->load(std::memory_order_relaxed) == 0 &&
           sampler_.PassOver(countdown, size);
  }

  // False for a block that was certainly never recorded.
  bool MayBeRecorded(const void* block) const {
    return filter_counts_ == nullptr ||
           BlockFilter::MayHold(filter_counts_, reinterpret_cast<uintptr_t>(block));
  }

 private:
  HeapSampler sampler_;
  const std::atomic<uint8_t>* filter_counts_ = nullptr;
  const std::atomic<uint64_t>* start_pending_ = nullptr;
};

}  // namespace dw
