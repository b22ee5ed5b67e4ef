// unwinder.h: captures the call stack of the code that called an interposed function.
//
// Chosen by measurement (bench/unwind_bench.cc, one run, 16 frames from inside glibc's qsort):
// a frame-pointer walk costs 5 ns but stops at the first Debian library frame (they are built
// without frame pointers) and never reaches the caller; 16 frames of frame-pointer code alone
// take 18 ns. libunwind's unw_backtrace with its per-thread cache takes ~155 ns and reaches it;
// libgcc's _Unwind_Backtrace and glibc's backtrace() take ~2.6 us. So libunwind is the default,
// loaded with dlopen(RTLD_LOCAL): linked normally it would interpose backtrace() and
// _Unwind_Backtrace for the whole process, which changes the target's behaviour. If libunwind is
// missing, libgcc's unwinder is used instead. Unwinding cost grows by ~7.5 ns per frame.
//
// Thread-safety: Capture() is thread-safe. Allocation: Init() allocates (dlopen) and must run
// with the hook guard held, outside any hook. Capture() never allocates itself, but libunwind
// may call malloc the first time a thread unwinds (TLS set-up); the hook guard turns those calls
// into plain pass-through. Safe inside a hook: Capture() yes, with the guard held; Init() no.
#pragma once

#include <atomic>
#include <cstdint>

#include "preload/wire_format.h"

namespace dw {

enum class UnwindMethod { kNone, kLibunwind, kLibgcc };

class Unwinder {
 public:
  // Loads the unwinder and warms it up once, so no hook ever pays for loading it.
  // `shim_begin`/`shim_end` bound the shim's own code: frames inside it are dropped.
  UnwindMethod Init(uintptr_t shim_begin, uintptr_t shim_end);

  // Fills `frames` with up to `max_depth` (<= wire::kMaxDepth) return addresses, innermost
  // first, starting at the first frame outside the shim. Returns the number of frames.
  // Inline, because the walk starts in the frame that calls the unwinder: each shim frame
  // between that frame and the program's costs ~10 ns to unwind and is then thrown away, so the
  // heap hooks capture in their own frame (StackCapturer), one shim frame from the program.
  [[gnu::always_inline]] uint32_t Capture(uintptr_t* frames, uint32_t max_depth) const {
    if (backtrace_ == nullptr || max_depth == 0) return 0;
    void* raw[wire::kMaxDepth + kMaxShimFrames];
    const int capacity = static_cast<int>(max_depth + shim_slack_.load(std::memory_order_relaxed));
    const int count = backtrace_(raw, capacity);
    const int first = FirstOutsideShim(raw, count);
    if (count == capacity && count - first < static_cast<int>(max_depth)) {
      return CaptureWithMoreSlack(frames, max_depth, static_cast<uint32_t>(first));
    }
    return CopyFrames(raw, first, count, frames, max_depth);
  }

  UnwindMethod method() const { return method_; }

  // The shim's own frames above the interposed function (the hook, the tracker, Capture) are
  // unwound and then dropped by address range; at most this many are allowed for.
  static constexpr uint32_t kMaxShimFrames = 8;

 private:
  int FirstOutsideShim(void* const* raw, int count) const {
    int first = 0;
    while (first < count &&
           reinterpret_cast<uintptr_t>(raw[first]) - shim_begin_ < shim_end_ - shim_begin_) {
      ++first;
    }
    return first;
  }
  static uint32_t CopyFrames(void* const* raw, int first, int count, uintptr_t* frames,
                             uint32_t max_depth) {
    uint32_t depth = 0;
    for (int i = first; i < count && depth < max_depth; ++i) {
      frames[depth++] = reinterpret_cast<uintptr_t>(raw[i]);
    }
    return depth;
  }
  // A capture that found more shim frames than allowed for: raises the allowance and unwinds
  // again until the stack is no longer cut short by them. A few times per process.
  uint32_t CaptureWithMoreSlack(uintptr_t* frames, uint32_t max_depth, uint32_t shim_frames) const;

  using BacktraceFn = int (*)(void**, int);
  BacktraceFn backtrace_ = nullptr;
  UnwindMethod method_ = UnwindMethod::kNone;
  uintptr_t shim_begin_ = 0;
  uintptr_t shim_end_ = 0;
  // How many shim frames a capture allows for: the most seen so far (grows, never shrinks).
  mutable std::atomic<uint32_t> shim_slack_{2};
};

// libgcc's _Unwind_Backtrace, as a backtrace(): return addresses, innermost first, starting
// with the caller's. Interprets DWARF CFI on every call (~2.6 us for 16 frames here), so it is
// only the fallback when libunwind is missing. Thread-safe; does not allocate once libgcc_s is
// loaded.
int LibgccBacktrace(void** frames, int capacity);

}  // namespace dw
