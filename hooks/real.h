// real.h: the real (next in lookup order) definition of every interposed function.
//
// real::malloc and friends are typed function pointers, one per line of hook_list.inc. They are
// resolved together, once, with dlsym(RTLD_NEXT), so other interposers later in the chain (an
// allocator preloaded after us, ASan) keep working. No hook ever calls dlsym itself.
//
// Thread-safety: EnsureResolved() may race; exactly one thread resolves, others see
// "not yet" and fall back (the heap hooks to the bootstrap arena). Allocation: resolution may
// allocate (dlsym), which the bootstrap arena serves. Safe inside a hook: yes, it is built for it.
#pragma once

#include <malloc.h>
#include <stdlib.h>
#include <time.h>

#include <atomic>

#include "hooks/hook_declarations.h"

namespace dw::real {

#define DW_HOOK(name, requirement) inline constinit decltype(&::name) name = nullptr;
#define DW_VERSIONED_HOOK(name, tag, version, requirement) \
  inline constinit decltype(&::name) name##_##tag = nullptr;
#include "hooks/hook_list.inc"
#undef DW_VERSIONED_HOOK
#undef DW_HOOK

// True once every real function is resolved. The first caller resolves them; a call made
// while resolution is under way (from dlsym itself, or another thread) gets false. Inline:
// every hook asks, and after start-up the answer is one load.
inline constinit std::atomic<bool> g_resolved{false};
bool ResolveOnce();
inline bool Resolved() { return g_resolved.load(std::memory_order_acquire); }
inline bool EnsureResolved() { return Resolved() || ResolveOnce(); }
// True if all required functions were found.
bool AllRequiredFound();

}  // namespace dw::real
