// alloc_hooks.cc: the malloc family. Each hook guards, calls the real function, records, returns.
//
// An allocation the shim will not record (sampled mode's common case, or a shim that is not
// tracking) is decided before the real call and forwarded as a plain tail call, with no guard:
// that is what keeps sampled mode near the bare allocator's cost.
//
// Before the real functions are resolved, requests are served by the bootstrap arena; its blocks
// are recognised everywhere and never reach the real allocator. Arguments and results are
// forwarded untouched: the target's allocator, alignment rules and errno are its own.
#include <errno.h>
#include <string.h>

#include "hooks/export.h"
#include "hooks/real.h"
#include "preload/bootstrap_arena.h"
#include "preload/events.h"
#include "preload/thread_state.h"

namespace {

constexpr size_t kMallocAlignment = 16;

// Records a fresh block unless this call came from inside the shim.
[[gnu::always_inline]] inline void* Recorded(const dw::HookScope& scope, void* block, size_t size) {
  if (scope.entered()) dw::OnHeapAlloc(block, size);
  return block;
}

void* BootstrapAllocate(size_t size, size_t alignment) {
  void* block = dw::bootstrap::Allocate(size, alignment);
  if (block == nullptr) errno = ENOMEM;
  return block;
}

// The hooks' bodies when the shim has work to do (resolving, the bootstrap arena, a block to
// record) are separate functions, so that the hooks' forwarding paths save no registers.
[[gnu::noinline]] void* MallocWithWork(size_t size) {
  if (!dw::real::EnsureResolved()) return BootstrapAllocate(size, kMallocAlignment);
  dw::HookScope scope;
  return Recorded(scope, dw::real::malloc(size), size);
}

[[gnu::noinline]] void* CallocWithWork(size_t count, size_t size) {
  size_t bytes;
  if (!dw::real::EnsureResolved()) {
    if (__builtin_mul_overflow(count, size, &bytes)) {
      errno = ENOMEM;
      return nullptr;
    }
    return BootstrapAllocate(bytes, kMallocAlignment);  // arena memory is never reused: zeroed
  }
  dw::HookScope scope;
  void* block = dw::real::calloc(count, size);
  if (block == nullptr) return block;
  return Recorded(scope, block, count * size);
}

}  // namespace

DW_EXPORT void* malloc(size_t size) noexcept {
  if (dw::real::Resolved() && dw::AllocationSkipsShim(size)) return dw::real::malloc(size);
  return MallocWithWork(size);
}

DW_EXPORT void free(void* block) noexcept {
  if (block == nullptr || dw::bootstrap::Owns(block)) return;
  if (!dw::real::EnsureResolved()) return;  // unreachable: only the arena allocates before this
  // No guard: a free is recorded even when re-entered (from inside the shim), so no release is
  // ever missed, and recording it calls nothing that could come back here. Before the real
  // free, so the address cannot be handed to another thread while our table still holds it.
  dw::OnHeapFree(block);
  dw::real::free(block);
}

DW_EXPORT void* calloc(size_t count, size_t size) noexcept {
  size_t bytes;
  if (dw::real::Resolved() && !__builtin_mul_overflow(count, size, &bytes) &&
      dw::AllocationSkipsShim(bytes)) {
    return dw::real::calloc(count, size);
  }
  return CallocWithWork(count, size);
}

namespace {

// realloc of a block that came from the bootstrap arena: move it into the real heap.
void* ReallocFromArena(void* block, size_t size) {
  if (size == 0) return nullptr;  // glibc: realloc(p, 0) frees p and returns NULL
  void* fresh = malloc(size);
  if (fresh != nullptr) {
    size_t old_size = dw::bootstrap::SizeOf(block);
    memcpy(fresh, block, old_size < size ? old_size : size);
  }
  return fresh;
}

// The shared body of realloc and reallocarray: `call` performs the real function. The old
// block is marked as moving before the call, so its address, if freed and handed to another
// thread meanwhile, cannot be confused with it. Inlined into the hook, so that the stack is
// captured in the hook's own frame.
template <typename Call>
[[gnu::always_inline]] inline void* TrackedRealloc(void* block, size_t bytes, Call call) {
  dw::HookScope scope;
  if (!dw::Tracking()) return call();
  dw::HeapTracker::Move move = dw::OnHeapReallocBegin(block);
  void* result = call();
  if (scope.entered()) {
    dw::OnHeapReallocEnd(move, result, bytes);
  } else {
    dw::OnNestedHeapRealloc(move, result, bytes);
  }
  return result;
}

}  // namespace

namespace {

[[gnu::noinline]] void* ReallocWithWork(void* block, size_t size) {
  if (dw::bootstrap::Owns(block)) return ReallocFromArena(block, size);
  if (!dw::real::EnsureResolved()) return BootstrapAllocate(size, kMallocAlignment);
  return TrackedRealloc(block, size, [=] { return dw::real::realloc(block, size); });
}

}  // namespace

DW_EXPORT void* realloc(void* block, size_t size) noexcept {
  if (dw::real::Resolved() && !dw::bootstrap::Owns(block) && dw::ReallocSkipsShim(block, size)) {
    return dw::real::realloc(block, size);
  }
  return ReallocWithWork(block, size);
}

DW_EXPORT void* reallocarray(void* block, size_t count, size_t size) noexcept {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    // Let the real function fail exactly as it would (ENOMEM, block intact); nothing to record.
    if (dw::real::EnsureResolved() && dw::real::reallocarray != nullptr) {
      return dw::real::reallocarray(block, count, size);
    }
    errno = ENOMEM;
    return nullptr;
  }
  if (dw::bootstrap::Owns(block)) return ReallocFromArena(block, bytes);
  if (!dw::real::EnsureResolved()) return BootstrapAllocate(bytes, kMallocAlignment);
  if (dw::ReallocSkipsShim(block, bytes)) {
    return dw::real::reallocarray != nullptr ? dw::real::reallocarray(block, count, size)
                                             : dw::real::realloc(block, bytes);
  }
  if (dw::real::reallocarray == nullptr) {
    return TrackedRealloc(block, bytes, [=] { return dw::real::realloc(block, bytes); });
  }
  return TrackedRealloc(block, bytes, [=] { return dw::real::reallocarray(block, count, size); });
}

DW_EXPORT void* memalign(size_t alignment, size_t size) noexcept {
  if (!dw::real::EnsureResolved()) return BootstrapAllocate(size, alignment);
  if (dw::AllocationSkipsShim(size)) return dw::real::memalign(alignment, size);
  dw::HookScope scope;
  return Recorded(scope, dw::real::memalign(alignment, size), size);
}

DW_EXPORT void* aligned_alloc(size_t alignment, size_t size) noexcept {
  if (!dw::real::EnsureResolved()) return BootstrapAllocate(size, alignment);
  if (dw::AllocationSkipsShim(size)) return dw::real::aligned_alloc(alignment, size);
  dw::HookScope scope;
  return Recorded(scope, dw::real::aligned_alloc(alignment, size), size);
}

DW_EXPORT int posix_memalign(void** out, size_t alignment, size_t size) noexcept {
  if (!dw::real::EnsureResolved()) {
    if (alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
    void* block = dw::bootstrap::Allocate(size, alignment);
    if (block == nullptr) return ENOMEM;
    *out = block;
    return 0;
  }
  if (dw::AllocationSkipsShim(size)) return dw::real::posix_memalign(out, alignment, size);
  dw::HookScope scope;
  int error = dw::real::posix_memalign(out, alignment, size);
  if (error == 0) Recorded(scope, *out, size);
  return error;
}

DW_EXPORT void* valloc(size_t size) noexcept {
  if (!dw::real::EnsureResolved()) return BootstrapAllocate(size, 4096);
  if (dw::AllocationSkipsShim(size)) return dw::real::valloc(size);
  dw::HookScope scope;
  return Recorded(scope, dw::real::valloc(size), size);
}

DW_EXPORT void* pvalloc(size_t size) noexcept {
  if (!dw::real::EnsureResolved()) return BootstrapAllocate((size + 4095) & ~size_t{4095}, 4096);
  if (dw::AllocationSkipsShim(size)) return dw::real::pvalloc(size);
  dw::HookScope scope;
  return Recorded(scope, dw::real::pvalloc(size), size);
}

DW_EXPORT size_t malloc_usable_size(void* block) noexcept {
  if (dw::bootstrap::Owns(block)) return dw::bootstrap::SizeOf(block);
  if (!dw::real::EnsureResolved()) return 0;
  return dw::real::malloc_usable_size(block);
}
