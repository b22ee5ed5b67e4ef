// thread_state.h: the per-thread reentrancy guard every hook takes first.
//
// Thread-safety: per-thread by construction. Allocation: none; the state lives in initial-exec
// TLS, which glibc reserves in the static TLS block at thread creation, so touching it can never
// call malloc (a global-dynamic access in a preloaded library could, via __tls_get_addr).
// Safe inside a hook: yes; it is what makes hooks safe.
#pragma once

#include "preload/heap_sampler.h"

namespace dw {

struct ThreadState {
  // Set while the shim's own code runs on this thread. Interposed functions called from inside
  // the shim (malloc from libunwind, dlsym, pthread_create) then pass straight through.
  bool in_shim;
  // Set for the census thread's whole life: nothing it does is ever recorded.
  bool internal_thread;
  // Set by the vfork hook (hooks/vfork_hook.S) around the vfork system call. The child runs on
  // the parent's memory, TLS included, until it execs or exits: hooks it runs must not touch
  // the parent's tables (docs/PITFALLS.md, section 5).
  bool in_vfork;
  // Sampled mode: bytes left before this thread's next heap sample (heap_sampler.h).
  SampleCountdown sample_countdown;
};

// The assembler name lets hooks/vfork_hook.S reach the flag without C++ name mangling.
extern __thread ThreadState t_state __asm__("dw_thread_state")
    __attribute__((tls_model("initial-exec")));

// HookScope: taken at the top of every hook. tracking() says whether this call may record.
// Re-entered calls (from the shim itself) and calls on the census thread only pass through.
class HookScope {
 public:
  HookScope() : entered_(!t_state.in_shim && !t_state.internal_thread && !t_state.in_vfork) {
    if (entered_) t_state.in_shim = true;
  }
  ~HookScope() {
    if (entered_) t_state.in_shim = false;
  }
  HookScope(const HookScope&) = delete;
  HookScope& operator=(const HookScope&) = delete;

  bool entered() const { return entered_; }

 private:
  bool entered_;
};

}  // namespace dw
