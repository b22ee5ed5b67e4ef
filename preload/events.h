// events.h: the one API between the hooks (hooks/) and the shim's core (preload/).
//
// Hooks know only these functions: they guard, call the real function, report what happened
// here, and return. Everything behind them (stack capture, the trackers, the census thread)
// lives in preload/ and is testable without LD_PRELOAD. Every event a hook reports is declared
// here, by family; the trackers' own headers hold only their classes.
//
// Thread-safety: the On* functions are lock-free and may run on any thread, concurrently.
// Allocation: the On* functions never allocate from the target's heap. InitRuntime() allocates
// (dlopen of the unwinder, thread creation) and must run with the hook guard held.
// Safe inside a hook: the On* functions, yes (with the guard held unless a function says
// otherwise); InitRuntime(), no.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

#include "preload/heap_gate.h"
#include "preload/heap_tracker.h"
#include "preload/module_map.h"
#include "preload/stack_capturer.h"
#include "preload/thread_state.h"
#include "preload/thread_tracker.h"
#include "preload/timer_tracker.h"

namespace dw {

// Brings the shim up: options, tables, unwinder, fork handlers, exit handler, census thread.
// `shim_begin`/`shim_end` bound the shim's code so its frames can be dropped from stacks.
// Without DRIFTWATCH_SOCKET the shim stays dormant: every hook only forwards.
void InitRuntime(uintptr_t shim_begin, uintptr_t shim_end);

// State read inline by the fast paths below; set once by InitRuntime().
extern constinit std::atomic<bool> g_tracking;
extern constinit HeapGate g_heap_gate;
extern constinit StackCapturer g_stack_capturer;

// True once tracking is on in this process. In a vfork child the memory is the parent's:
// nothing may be recorded there.
inline bool Tracking() { return g_tracking.load(std::memory_order_acquire) && !t_state.in_vfork; }

// ---- Heap ----
// Heap events. Call OnHeapFree before the real free; the realloc pair around the real call.
// The first two run on every malloc and free: inline, they pass the gate (HeapGate) and only
// call the tracker for what it must see. A stack is captured inline too, in the hook's frame
// (StackCapturer); a null stack means "not recorded, only check the deferred census start".
void RecordHeapAlloc(void* block, size_t size, const StackCapturer::Stack* stack);
void RecordHeapFree(void* block);
// Before the real allocation, with no guard: true when the shim has nothing to do for it (not
// tracking, or not sampled), and the hook only forwards it. The countdown is per thread, so a
// re-entered call or the census thread's own counts against its own thread's countdown only.
inline bool AllocationSkipsShim(size_t size) {
  return !g_tracking.load(std::memory_order_acquire) ||
         g_heap_gate.SkipsAllocation(t_state.sample_countdown, size);
}
// The same for realloc: the old block was certainly never recorded, and the new one will not be.
inline bool ReallocSkipsShim(void* old_block, size_t size) {
  if (!g_tracking.load(std::memory_order_acquire)) return true;
  if (old_block != nullptr && g_heap_gate.MayBeRecorded(old_block)) return false;
  return g_heap_gate.SkipsAllocation(t_state.sample_countdown, size);
}
// pre (OnHeapAlloc): the hook guard is held. OnHeapFree needs no guard.
[[gnu::always_inline]] inline void OnHeapAlloc(void* block, size_t size) {
  if (block == nullptr || !g_tracking.load(std::memory_order_acquire)) return;
  const HeapGate::Pass pass = g_heap_gate.Allocation(t_state.sample_countdown, size);
  if (pass == HeapGate::Pass::kSkip) return;
  if (pass == HeapGate::Pass::kCheckStartOnly) return RecordHeapAlloc(block, size, nullptr);
  StackCapturer::Stack stack;
  g_stack_capturer.Capture(stack);
  RecordHeapAlloc(block, size, &stack);
}
inline void OnHeapFree(void* block) {
  if (Tracking() && g_heap_gate.MayBeRecorded(block)) RecordHeapFree(block);
}
// realloc, inline for the same reason: in sampled mode, an old block that was never sampled and
// a result the countdown passes over cost no call.
HeapTracker::Move RecordHeapReallocBegin(void* old_block);
void RecordHeapReallocEnd(const HeapTracker::Move& move, void* result, size_t size,
                          const StackCapturer::Stack* stack);
inline HeapTracker::Move OnHeapReallocBegin(void* old_block) {
  if (old_block == nullptr || !g_heap_gate.MayBeRecorded(old_block)) {
    HeapTracker::Move unrecorded;
    unrecorded.old_block = reinterpret_cast<uintptr_t>(old_block);
    return unrecorded;
  }
  return RecordHeapReallocBegin(old_block);
}
[[gnu::always_inline]] inline void OnHeapReallocEnd(const HeapTracker::Move& move, void* result,
                                                    size_t size) {
  const HeapGate::Pass pass = result != nullptr
                                  ? g_heap_gate.Allocation(t_state.sample_countdown, size)
                                  : HeapGate::Pass::kSkip;
  if (pass != HeapGate::Pass::kRecord) {
    if (move.handle != nullptr || pass != HeapGate::Pass::kSkip) {
      RecordHeapReallocEnd(move, result, size, nullptr);
    }
    return;
  }
  StackCapturer::Stack stack;
  g_stack_capturer.Capture(stack);
  RecordHeapReallocEnd(move, result, size, &stack);
}
// A realloc re-entered from inside the shim (a signal handler interrupting a hook): the old
// block's release is recorded, so no stale address stays in the table; the result is not
// tracked, since no stack can be taken here.
void OnNestedHeapRealloc(const HeapTracker::Move& move, void* result, size_t size);

// ---- Modules ----
// dlclose. OnModulesUnloading before the real call (it snapshots the modules and their
// build-ids); if it returned true, OnModulesUnloaded after it, which records what was unmapped.
bool OnModulesUnloading(UnloadedModules::Snapshot& before);
void OnModulesUnloaded(UnloadedModules::Snapshot& before, bool closed);

// ---- The process ----
// _exit, which runs no exit handler: sends the final census as exit's handler would.
void OnProcessExiting();

// unshare/setns, which fail with EINVAL in a multithreaded process for some namespaces. Before
// the real call: true if the census thread stepped aside (wait for it to be gone). After it,
// if it did: the thread comes back one interval later.
bool OnSingleThreadedCallBegin();
void OnSingleThreadedCallEnd();

// ---- File descriptors ----
// Classification (wire::FdType bits).

// What `fd` is: fstat, then getsockopt(SO_DOMAIN) for sockets and readlink of /proc/self/fd/N for
// anonymous inodes and unlinked regular files (memfd). kFdUnknown if `fd` is not open.
uint32_t ClassifyFd(int fd);
// For a descriptor just opened from a path: fstat alone, since a path never yields an anonymous
// inode or a memfd. One system call instead of up to three.
uint32_t ClassifyPathFd(int fd);
// The type of a socket of address family `domain` (AF_UNIX, AF_INET ...).
uint32_t SocketType(int domain);
// The recorded type of a tracked descriptor, else ClassifyFd(fd). For the dup family and
// accept, whose new descriptor is of the same kind as an existing one.
uint32_t FdTypeOf(int fd);

// Creations are reported after a successful call, with the site of the caller; releases before
// the real call, so that the number cannot be handed to another thread while the table still
// holds it. A creation on a number still in the table releases the stale entry first (it was
// closed where no hook saw it).

// pre (On*Created, OnFdAdopted, OnFdsReceived): the hook guard is held.
void OnFdCreated(int fd, uint32_t fd_type);
// Two descriptors from one call (pipe, socketpair): one stack capture for both.
void OnFdPairCreated(const int fds[2], uint32_t fd_type);
// A descriptor a stream takes ownership of (fdopen, fdopendir): recorded at this site, with its
// classified type, only if no hook saw it created, so a leak stays attributed to the call that
// really made it.
void OnFdAdopted(int fd);
// Every SCM_RIGHTS descriptor in the control messages of a successful recvmsg.
void OnFdsReceived(const struct msghdr* message);

// Before close(fd) (and the stream closes). Safe without the guard.
void OnFdClosing(int fd);
// Before close_range(first, last, flags) or closefrom(first) (last = ~0u). Only when the call
// will close: flags with CLOSE_RANGE_CLOEXEC only mark descriptors, and invalid arguments fail
// without closing anything (both are checked here). Safe without the guard.
void OnFdRangeClosing(unsigned int first, unsigned int last, int flags);

// ---- Threads ----
// All run with the hook guard held.

// Before the real pthread_create, in the creating thread: captures the site and claims a start
// slot to pass to ThreadTrampoline. nullptr means "create untracked" (pool full, no key).
ThreadStartPool::Slot* OnThreadCreating(ThreadStartPool::Routine routine, void* arg,
                                        const pthread_attr_t* attr);
// After the real pthread_create with the slot returned by OnThreadCreating: `thread` is valid
// when `error` is 0. Must be called whatever the outcome, guard held or not (the new thread
// waits for it).
void OnThreadCreated(ThreadStartPool::Slot* slot, int error, pthread_t thread);
// The start routine given to the real pthread_create. Never noexcept and holds no guard while
// the user's routine runs: a forced unwind (pthread_exit, cancellation) crosses this frame.
void* ThreadTrampoline(void* slot);
void OnThreadDetaching(pthread_t thread);
uint64_t OnThreadJoining(pthread_t thread);
void OnThreadJoined(pthread_t thread, uint64_t target);

// ---- POSIX timers ----
// Call OnTimerCreated after a successful timer_create, OnTimerDeleting before the
// real timer_delete.
void OnTimerCreated(timer_t timer, TimerAbi abi, const struct sigevent* event);
void OnTimerDeleting(timer_t timer, TimerAbi abi);

}  // namespace dw
