// unwinder.h: captures the call stack of the code that called an interposed function.
//
// Debian's libraries are built without frame pointers, so a frame-pointer walk loses the very
// frame that matters (the caller of operator new; pitfalls.md section 5, E9). The default is
// libunwind's unw_backtrace with its per-thread cache (~230 ns for 35 frames here, against
// ~4 us for libgcc's _Unwind_Backtrace). libunwind is loaded with dlopen(RTLD_LOCAL): linked
// normally it would interpose backtrace() and _Unwind_Backtrace for the whole process, which
// changes the target's behaviour. If libunwind is missing, libgcc's unwinder is used instead.
//
// Thread-safety: Capture() is thread-safe. Allocation: Init() allocates (dlopen) and must run
// with the hook guard held, outside any hook. Capture() never allocates itself, but libunwind
// may call malloc the first time a thread unwinds (TLS set-up); the hook guard turns those calls
// into plain pass-through. Safe inside a hook: Capture() yes, with the guard held; Init() no.
#pragma once

#include <atomic>
#include <cstdint>

namespace dw {

enum class UnwindMethod { kNone, kLibunwind, kLibgcc };

class Unwinder {
 public:
  // Loads the unwinder and warms it up once, so no hook ever pays for loading it.
  // `shim_begin`/`shim_end` bound the shim's own code: frames inside it are dropped.
  UnwindMethod Init(uintptr_t shim_begin, uintptr_t shim_end);

  // Fills `frames` with up to `max_depth` return addresses, innermost first, starting at the
  // first frame outside the shim. Returns the number of frames.
  uint32_t Capture(uintptr_t* frames, uint32_t max_depth) const;

  UnwindMethod method() const { return method_; }

  // The shim's own frames above the interposed function (the hook, the tracker, Capture) are
  // unwound and then dropped by address range; at most this many are allowed for.
  static constexpr uint32_t kMaxShimFrames = 8;

 private:
  using BacktraceFn = int (*)(void**, int);
  BacktraceFn backtrace_ = nullptr;
  UnwindMethod method_ = UnwindMethod::kNone;
  uintptr_t shim_begin_ = 0;
  uintptr_t shim_end_ = 0;
  // How many shim frames a capture allows for: the most seen so far (grows, never shrinks).
  mutable std::atomic<uint32_t> shim_slack_{2};
};

}  // namespace dw
