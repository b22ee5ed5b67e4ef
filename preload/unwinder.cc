#include "preload/unwinder.h"

#include <dlfcn.h>
#include <unwind.h>

#include "preload/raw_log.h"
#include "preload/wire_format.h"

namespace dw {
namespace {

struct LibgccWalk {
  void** frames;
  int capacity;
  int count;
};

_Unwind_Reason_Code CollectFrame(struct _Unwind_Context* context, void* argument) {
  auto* walk = static_cast<LibgccWalk*>(argument);
  if (walk->count >= walk->capacity) return _URC_END_OF_STACK;
  uintptr_t ip = _Unwind_GetIP(context);
  if (ip == 0) return _URC_END_OF_STACK;
  walk->frames[walk->count++] = reinterpret_cast<void*>(ip);
  return _URC_NO_REASON;
}

}  // namespace

int LibgccBacktrace(void** frames, int capacity) {
  LibgccWalk walk{frames, capacity, 0};
  _Unwind_Backtrace(CollectFrame, &walk);
  return walk.count;
}

UnwindMethod Unwinder::Init(uintptr_t shim_begin, uintptr_t shim_end) {
  shim_begin_ = shim_begin;
  shim_end_ = shim_end;
  // RTLD_LOCAL keeps libunwind's weak backtrace/_Unwind_Backtrace out of the global scope.
  void* libunwind = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
  if (libunwind != nullptr) {
    using SetCachingPolicyFn = int (*)(void*, int);
    auto set_caching =
        reinterpret_cast<SetCachingPolicyFn>(dlsym(libunwind, "_ULx86_64_set_caching_policy"));
    auto* address_space = static_cast<void**>(dlsym(libunwind, "_ULx86_64_local_addr_space"));
    backtrace_ = reinterpret_cast<BacktraceFn>(dlsym(libunwind, "unw_backtrace"));
    if (set_caching != nullptr && address_space != nullptr) {
      constexpr int kUnwCachePerThread = 2;  // UNW_CACHE_PER_THREAD: no global lock per unwind
      set_caching(*address_space, kUnwCachePerThread);
    }
    if (backtrace_ != nullptr) method_ = UnwindMethod::kLibunwind;
  }
  if (backtrace_ == nullptr) {
    // A failed dlopen leaves an error string that the next dl* call frees: clear it now, while
    // the guard is held, rather than from inside some later hook (docs/PITFALLS.md, section 1).
    dlerror();
    DW_LOG(kWarning, "libunwind.so.8 not found; using libgcc's slower unwinder");
    backtrace_ = LibgccBacktrace;
    method_ = UnwindMethod::kLibgcc;
  }
  // Warm-up: the first unwind loads libgcc_s / builds caches; do it here, not in a hook.
  uintptr_t scratch[wire::kMaxDepth];
  Capture(scratch, wire::kMaxDepth);
  return method_;
}

uint32_t Unwinder::Capture(uintptr_t* frames, uint32_t max_depth) const {
  if (backtrace_ == nullptr || max_depth == 0) return 0;
  void* raw[wire::kMaxDepth + kMaxShimFrames];
  // Each frame unwound costs ~7 ns, so only as many of the shim's own frames are allowed for as
  // have been seen; a capture that finds more unwinds again with room for them, which happens a
  // few times per process, and so no stack is ever cut short by the shim's frames.
  uint32_t slack = shim_slack_.load(std::memory_order_relaxed);
  int count = 0;
  int first = 0;
  for (;;) {
    const int capacity = static_cast<int>(max_depth + slack);
    count = backtrace_(raw, capacity);
    first = 0;
    while (first < count) {
      auto ip = reinterpret_cast<uintptr_t>(raw[first]);
      if (ip < shim_begin_ || ip >= shim_end_) break;
      ++first;
    }
    const bool cut_short = count == capacity && count - first < static_cast<int>(max_depth);
    if (!cut_short || slack >= kMaxShimFrames) break;
    slack = static_cast<uint32_t>(first) + 1 < kMaxShimFrames ? static_cast<uint32_t>(first) + 1
                                                              : kMaxShimFrames;
    // Only ever raised, even when threads race: a lowered value would cost retries again.
    uint32_t seen = shim_slack_.load(std::memory_order_relaxed);
    while (seen < slack &&
           !shim_slack_.compare_exchange_weak(seen, slack, std::memory_order_relaxed)) {
    }
  }
  uint32_t depth = 0;
  for (int i = first; i < count && depth < max_depth; ++i) {
    frames[depth++] = reinterpret_cast<uintptr_t>(raw[i]);
  }
  return depth;
}

}  // namespace dw
