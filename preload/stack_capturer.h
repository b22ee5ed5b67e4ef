// stack_capturer.h: the call stack of the code that called a hook, captured in the hook's own
// frame.
//
// The unwinder walks from the frame that calls it, and every shim frame between there and the
// program's costs ~10 ns before it is thrown away. Inlined into the heap hooks (events.h), the
// walk starts one frame from the program's instead of four: on malloc-heavy code that is a
// quarter of exact mode's unwinding.
//
// Thread-safety: Init() once, before tracking starts; Capture() on any thread. Allocation: none
// (libunwind may allocate on a thread's first unwind; the hook guard passes that through). Safe
// inside a hook: Capture(), with the guard held.
#pragma once

#include <cerrno>
#include <cstdint>

#include "preload/module_map.h"
#include "preload/unwinder.h"
#include "preload/wire_format.h"

namespace dw {

class StackCapturer {
 public:
  struct Stack {
    uint16_t module_generation;  // UnloadedModules' count when the stack was taken
    uint32_t depth;
    uintptr_t frames[wire::kMaxDepth];
  };

  void Init(const Unwinder* unwinder, const UnloadedModules* unloads, uint32_t depth) {
    unwinder_ = unwinder;
    unloads_ = unloads;
    depth_ = depth;
  }

  [[gnu::always_inline]] void Capture(Stack& stack) const {
    // libunwind's memory checks set errno; the program's must survive the hook.
    const int saved_errno = errno;
    // Read before unwinding: every module on this stack is mapped while its code runs here, so
    // any later unload has a higher number, and the collector can tell this stack's modules
    // from others loaded at the same addresses since.
    stack.module_generation = static_cast<uint16_t>(unloads_->generation());
    stack.depth = unwinder_->Capture(stack.frames, depth_);
    errno = saved_errno;
  }

 private:
  const Unwinder* unwinder_ = nullptr;
  const UnloadedModules* unloads_ = nullptr;
  uint32_t depth_ = 0;
};

}  // namespace dw
