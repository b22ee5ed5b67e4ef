// heap_sampler.h: sampled mode's choice of heap blocks, and what each sampled block stands for.
//
// Sampling is by bytes, as in tcmalloc, jemalloc's prof and Go's runtime: sample points fall on
// the stream of allocated bytes as a Poisson process with a mean gap of `mean` bytes, and a block
// is sampled when a point falls inside it, which happens with probability p = 1 - exp(-size/mean).
// Each thread counts down the bytes left before its next point; an allocation that does not
// reach it costs one subtraction and a compare. Since the gaps are memoryless, the countdown
// starts afresh after a sampled block.
//
// A sampled block counts for 1/p blocks and size/p bytes, which makes every per-site sum an
// unbiased estimate. The rounding to whole numbers is unbiased too (randomised by the block's
// address), and it is a pure function of address and size, so a free subtracts exactly what its
// allocation added.
//
// Nothing here calls libm: a program may define its own `log` or `exp`, and a preloaded library
// calling them by name would get the program's.
//
// Thread-safety: the countdown is per thread (TLS); Weigh() is a pure function. Allocation:
// none. Safe inside a hook: yes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dw {

// What a recorded block adds to its site's counters.
struct BlockWeight {
  uint64_t count;
  uint64_t bytes;
};

// The per-thread countdown; lives in ThreadState (initial-exec TLS), zero at thread start.
struct SampleCountdown {
  uint64_t bytes_left;  // before the next sample point
  uint64_t random;      // xorshift state; 0 until the thread's first draw
};

class HeapSampler {
 public:
  // `mean_bytes` 0 is exact mode: every block is recorded with weight (1, size).
  void Init(uint32_t mean_bytes) { mean_ = mean_bytes; }
  bool sampling() const { return mean_ != 0; }
  uint32_t mean_bytes() const { return mean_; }

  // Counts an allocation of `size` bytes against the thread's countdown when it stops short of
  // the next sample point (true: not sampled). False leaves the countdown as it was, for Take().
  bool PassOver(SampleCountdown& countdown, size_t size) const {
    if (size >= countdown.bytes_left) return false;
    countdown.bytes_left -= size;
    return true;
  }

  // Counts an allocation of `size` bytes against the thread's countdown; true if it is sampled.
  bool Take(SampleCountdown& countdown, size_t size) const {
    return !PassOver(countdown, size) && TakeSlow(countdown, size);
  }

  // Inline: exact mode weighs every allocation and free, at no more than a compare.
  BlockWeight Weigh(uintptr_t block, uint64_t size) const {
    return mean_ == 0 ? BlockWeight{1, size} : WeighSample(block, size);
  }

  // A fork child starts from the parent's countdown state: mix in something of its own, so
  // parent and child do not sample the same allocations from here on.
  static void Reseed(SampleCountdown& countdown, uint64_t salt);

 private:
  bool TakeSlow(SampleCountdown& countdown, size_t size) const;
  BlockWeight WeighSample(uintptr_t block, uint64_t size) const;
  uint64_t NextGap(SampleCountdown& countdown) const;

  uint32_t mean_ = 0;
};

// Natural logarithm of x > 0 and exp(-x) for x >= 0, to about 1e-12 relative; exposed for tests.
double NaturalLog(double x);
double ExpNegative(double x);
// 1 - exp(-x) for x >= 0, accurate for small x too.
double OneMinusExpNegative(double x);

}  // namespace dw
