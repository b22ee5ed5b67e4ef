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

#include <cstddef>

namespace dw::bootstrap {

void* Allocate(size_t size, size_t alignment);
// True if `block` came from Allocate().
bool Owns(const void* block);
// The size requested for a block of ours.
size_t SizeOf(const void* block);

}  // namespace dw::bootstrap
