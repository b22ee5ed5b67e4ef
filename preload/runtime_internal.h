// runtime_internal.h: the shim's process-wide state, for the trackers' event functions.
//
// Hooks never include this; they call the narrow event functions declared in events.h, which
// are implemented on top of g_runtime.
//
// Thread-safety: g_runtime is constant-initialised, filled once by InitRuntime() before tracking
// starts, and never destroyed. Allocation: none. Safe inside a hook: yes (with the guard held).
#pragma once

#include <atomic>
#include <cstdint>

#include "preload/fd_tracker.h"
#include "preload/heap_tracker.h"
#include "preload/module_map.h"
#include "preload/options.h"
#include "preload/reporter.h"
#include "preload/stack_table.h"
#include "preload/thread_tracker.h"
#include "preload/timer_tracker.h"
#include "preload/unwinder.h"

namespace dw {

// One tracker per resource kind, plus what they share.
struct Runtime {
  Options options;
  StackTable stacks;
  Unwinder unwinder;
  HeapTracker heap;
  FdTracker fds;
  ThreadTracker threads;
  TimerTracker timers;
  UnloadedModules unloaded_modules;
  Reporter reporter;
};
extern constinit Runtime g_runtime;

// The site of the code that called the interposed function: unwinds and interns its stack.
// pre: the hook guard is held.
uint32_t CaptureSite();

}  // namespace dw
