// bootstrap_arena.h: serves allocations made before the real malloc family is resolved.
//
// dlsym itself may allocate while the shim looks up the real malloc (and a failing lookup
// always does; docs/PITFALLS.md, section 1). Those requests are served from a static arena.
// Its blocks are never handed to the real allocator: free() ignores them and realloc() copies
// out of them.
//
// Thread-safety: lock-free (atomic bump pointer). Allocation: none; static memory, then mmap if
// the arena overflows (never abort). Safe inside a hook: yes.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace dw::bootstrap {

void* Allocate(size_t size, size_t alignment);
// True if `block` came from Allocate().
// Inline: every free asks. The arena's bounds are fixed; the overflow blocks (rare) are
// searched only once there are any.
namespace detail {
inline constexpr size_t kArenaBytes = 256 * 1024;
alignas(64) inline char g_arena[kArenaBytes];
inline constinit std::atomic<int> g_overflow_count{0};
bool OwnsOverflowBlock(uintptr_t address);
}  // namespace detail
inline bool Owns(const void* block) {
  const auto address = reinterpret_cast<uintptr_t>(block);
  const auto arena = reinterpret_cast<uintptr_t>(detail::g_arena);
  if (address - arena < detail::kArenaBytes) return true;
  return detail::g_overflow_count.load(std::memory_order_acquire) != 0 &&
         detail::OwnsOverflowBlock(address);
}
// The size requested for a block of ours.
size_t SizeOf(const void* block);

}  // namespace dw::bootstrap
