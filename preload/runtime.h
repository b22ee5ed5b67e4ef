// runtime.h: the shim's lifecycle and the narrow API the hooks call.
//
// Hooks (hooks/) know only these functions: they guard, call the real function, report what
// happened here, and return. Everything behind them (stack capture, the trackers, the census
// thread) lives in preload/ and is testable without LD_PRELOAD.
//
// Thread-safety: the On* functions are lock-free and may run on any thread, concurrently.
// Allocation: the On* functions never allocate from the target's heap. InitRuntime() allocates
// (dlopen of the unwinder, thread creation) and must run with the hook guard held.
// Safe inside a hook: the On* functions, yes (with the guard held); InitRuntime(), no.
#pragma once

#include <cstddef>
#include <cstdint>

#include "preload/heap_tracker.h"
#include "preload/module_map.h"

namespace dw {

// Brings the shim up: options, tables, unwinder, fork handlers, exit handler, census thread.
// `shim_begin`/`shim_end` bound the shim's code so its frames can be dropped from stacks.
// Without DRIFTWATCH_SOCKET the shim stays dormant: every hook only forwards.
void InitRuntime(uintptr_t shim_begin, uintptr_t shim_end);

// True once tracking is on in this process.
bool Tracking();

// Heap events. Call OnHeapFree before the real free; the realloc pair around the real call.
void OnHeapAlloc(void* block, size_t size);
void OnHeapFree(void* block);
HeapTracker::Move OnHeapReallocBegin(void* old_block);
void OnHeapReallocEnd(const HeapTracker::Move& move, void* result, size_t size);
// A realloc re-entered from inside the shim (a signal handler interrupting a hook): the old
// block's release is recorded, so no stale address stays in the table; the result is not
// tracked, since no stack can be taken here.
void OnNestedHeapRealloc(const HeapTracker::Move& move, void* result, size_t size);

// dlclose. OnModulesUnloading before the real call (it snapshots the modules and their
// build-ids); if it returned true, OnModulesUnloaded after it, which records what was unmapped.
bool OnModulesUnloading(UnloadedModules::Snapshot& before);
void OnModulesUnloaded(UnloadedModules::Snapshot& before, bool closed);

// _exit, which runs no exit handler: sends the final census as exit's handler would.
void OnProcessExiting();

// A descriptor pair the shim itself made through a hook (libunwind's memory-validation pipe):
// both ends are moved to high numbers, so the program's lowest-free descriptors stay free.
void MoveShimPairHigh(int fds[2]);

// unshare/setns, which fail with EINVAL in a multithreaded process for some namespaces. Before
// the real call: true if the census thread stepped aside (wait for it to be gone). After it,
// if it did: the thread comes back one interval later.
bool OnSingleThreadedCallBegin();
void OnSingleThreadedCallEnd();

}  // namespace dw
