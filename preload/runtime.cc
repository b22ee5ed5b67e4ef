#include "preload/events.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "preload/limits.h"
#include "preload/options.h"
#include "preload/raw_log.h"
#include "preload/runtime_internal.h"
#include "preload/thread_state.h"
#include "preload/wire_format.h"

extern "C" int __cxa_atexit(void (*function)(void*), void* argument, void* library_handle);

namespace dw {

__thread ThreadState t_state __asm__("dw_thread_state") __attribute__((tls_model("initial-exec")));

// Constant-initialised and never destroyed: threads still allocating while exit() runs must
// find the tables intact (docs/PITFALLS.md, section 12).
constinit Runtime g_runtime;
constinit std::atomic<bool> g_tracking{false};
constinit HeapGate g_heap_gate;
constinit StackCapturer g_stack_capturer;

namespace {

uint32_t InternStack(const StackCapturer::Stack& stack) {
  if (stack.depth == 0) return StackTable::kNoSite;
  return g_runtime.stacks.Intern(stack.frames, stack.depth, stack.module_generation);
}

}  // namespace

uint32_t CaptureSite() {
  StackCapturer::Stack stack;
  g_stack_capturer.Capture(stack);
  return InternStack(stack);
}

namespace {

// The fork handler runs on the forking thread, outside any hook: the guard keeps what it does
// (and what glibc does for it) out of the target's census. There is no prepare handler: fork
// never waits for the census thread.
void ForkChild() {
  HookScope scope;
  // The child inherits this thread's sampling state: without a new seed, parent and child would
  // sample the same allocations from here on.
  HeapSampler::Reseed(t_state.sample_countdown, static_cast<uint64_t>(os::GetPid()));
  g_runtime.heap.AfterForkChild();
  g_runtime.fds.handles().AfterForkChild();
  g_runtime.threads.handles().AfterForkChild();
  g_runtime.timers.handles().AfterForkChild();
  g_runtime.unloaded_modules.AfterForkChild();
  g_runtime.reporter.ChildAfterFork();
}

void FlushAtExit(void*) {
  HookScope scope;
  g_runtime.reporter.FinalFlush();
}

uint64_t HeapTableOverflowed() { return g_runtime.heap.table_overflowed(); }
uint64_t HeapUntrackedFrees() { return g_runtime.heap.untracked_frees(); }

// Census sources of the handle kinds: plain functions, as the reporter takes no context.
template <HandleTracker& (*Tracker)()>
KindSource HandleKindSource() {
  KindSource source;
  source.counters = &Tracker().counters();
  source.site_detail = [](uint32_t site) { return Tracker().SiteDetail(site); };
  source.table_overflowed = [] { return Tracker().table_overflowed(); };
  source.untracked_releases = [] { return Tracker().untracked_releases(); };
  return source;
}
HandleTracker& FdHandles() { return g_runtime.fds.handles(); }
HandleTracker& ThreadHandles() { return g_runtime.threads.handles(); }
HandleTracker& TimerHandles() { return g_runtime.timers.handles(); }

// A shim that could not start holds no memory: every table is unmapped, and its methods then
// map nothing. No other thread can be inside a table yet (tracking never started).
void ReleaseMemory(Runtime& runtime) {
  runtime.stacks.ReleaseMemory();
  runtime.heap.ReleaseMemory();
  runtime.fds.handles().ReleaseMemory();
  runtime.threads.handles().ReleaseMemory();
  runtime.timers.handles().ReleaseMemory();
  runtime.reporter.ReleaseMemory();
}

constexpr uint32_t KindIndex(wire::Kind kind) { return static_cast<uint32_t>(kind); }

}  // namespace

void InitRuntime(uintptr_t shim_begin, uintptr_t shim_end) {
  Runtime& runtime = g_runtime;
  os::RememberStderr();
  // A set-uid program's environment is its caller's: it must not choose where this process's
  // memory layout is sent (reached through /etc/ld.so.preload, say). Silently dormant.
  if (os::IsSecureExecution()) return;
  LoadOptions(runtime.options);
  if (!runtime.options.enabled()) return;
  const uint32_t max_sites = runtime.options.max_sites;
  if (!runtime.stacks.Init(max_sites, runtime.options.depth) ||
      !runtime.heap.Init(max_sites, runtime.options.sample_mean_bytes) ||
      !runtime.fds.Init(max_sites) || !runtime.threads.Init(max_sites) ||
      !runtime.timers.Init(max_sites)) {
    DW_LOG(kError, "cannot map the shim's tables; not tracking");
    ReleaseMemory(runtime);
    return;
  }
  runtime.unwinder.Init(shim_begin, shim_end);
  g_stack_capturer.Init(&runtime.unwinder, &runtime.unloaded_modules, runtime.options.depth);
  // The thread-exit key is created now, while few keys exist: a low key number is stored by
  // glibc without allocating.
  if (!InitThreadTracking()) {
    DW_LOG(kWarning, "cannot create the thread-exit key; threads are counted only from /proc");
  }
  // Main's own exit (pthread_exit) must be seen too: the census thread then knows to end when
  // it is the last thread left.
  WatchThisThreadsExit();

  CensusSources sources;
  sources.stacks = &runtime.stacks;
  sources.unloaded_modules = &runtime.unloaded_modules;
  KindSource& heap = sources.kinds[KindIndex(wire::Kind::kHeap)];
  heap.counters = &runtime.heap.counters();
  heap.table_overflowed = HeapTableOverflowed;
  heap.untracked_releases = HeapUntrackedFrees;
  sources.heap_sample_mean_bytes = runtime.options.sample_mean_bytes;
  sources.kinds[KindIndex(wire::Kind::kFds)] = HandleKindSource<FdHandles>();
  sources.kinds[KindIndex(wire::Kind::kThreads)] = HandleKindSource<ThreadHandles>();
  sources.kinds[KindIndex(wire::Kind::kTimers)] = HandleKindSource<TimerHandles>();
  sources.reconcilers[0] = ReconcileFds;
  sources.reconcilers[1] = ReconcileThreads;
  sources.record_writers[0] = WriteLimits;
  sources.record_writers[1] = WriteThreadStates;
  Reporter::Config config;
  config.socket_path = runtime.options.socket_path;
  config.interval_ms = runtime.options.interval_ms;
  config.depth = static_cast<uint16_t>(runtime.options.depth);
  config.startup_uid = getuid();
  if (!runtime.reporter.Init(config, sources)) {
    DW_LOG(kError, "cannot map the census buffers or start the census thread; not tracking");
    ReleaseMemory(runtime);
    return;  // stays dormant: hooks only forward
  }
  pthread_atfork(nullptr, nullptr, ForkChild);
  // Registered with no library handle, before glibc registers the loader's own finaliser
  // (which runs every library's destructors): exit handlers run last-registered first, so this
  // runs after the target's handlers and after every library destructor. A handler tied to our
  // library would run with our destructors, before those of libraries loaded after us.
  __cxa_atexit(FlushAtExit, nullptr, nullptr);
  g_heap_gate.Init(runtime.heap.sampler(), runtime.heap.filter(),
                   runtime.reporter.start_pending_word());
  g_tracking.store(true, std::memory_order_release);
  DW_LOG(kInfo, "tracking; census every "
                    << runtime.options.interval_ms << " ms to " << runtime.options.socket_path
                    << "; heap " << (runtime.options.sample_mean_bytes != 0 ? "sampled" : "exact"));
}

void RecordHeapAlloc(void* block, size_t size, const StackCapturer::Stack* stack) {
  os::ErrnoKeeper keep_errno;
  if (stack != nullptr) g_runtime.heap.OnAlloc(block, size, InternStack(*stack));
  if (g_runtime.reporter.start_pending()) g_runtime.reporter.StartIfDue();
}

void RecordHeapFree(void* block) { g_runtime.heap.OnFree(block); }

HeapTracker::Move RecordHeapReallocBegin(void* old_block) {
  return g_runtime.heap.BeginRealloc(old_block);
}

void RecordHeapReallocEnd(const HeapTracker::Move& move, void* result, size_t size,
                          const StackCapturer::Stack* stack) {
  os::ErrnoKeeper keep_errno;
  const uint32_t site = stack != nullptr ? InternStack(*stack) : HeapTracker::kUntrackedResult;
  g_runtime.heap.EndRealloc(move, result, size, site);
  if (g_runtime.reporter.start_pending()) g_runtime.reporter.StartIfDue();
}

void OnNestedHeapRealloc(const HeapTracker::Move& move, void* result, size_t size) {
  g_runtime.heap.EndRealloc(move, result, size, HeapTracker::kUntrackedResult);
}

bool OnModulesUnloading(UnloadedModules::Snapshot& before) {
  return g_runtime.unloaded_modules.BeforeUnload(before);
}

void OnModulesUnloaded(UnloadedModules::Snapshot& before, bool closed) {
  g_runtime.unloaded_modules.AfterUnload(before, closed);
}

void OnProcessExiting() { g_runtime.reporter.FinalFlush(); }

bool OnSingleThreadedCallBegin() { return g_runtime.reporter.StepAside(); }

void OnSingleThreadedCallEnd() { g_runtime.reporter.Return(); }

}  // namespace dw
