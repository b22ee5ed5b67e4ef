// Stack capture cost of each unwinder the shim could use, and whether each one finds the frame
// that matters. The shim captures a stack for every allocation, fd, thread and timer, so it must
// pick its unwinder by measurement: a frame-pointer walk is far cheaper than anything else, but
// Debian's libraries are built without frame pointers, and a walk that passes through one of them
// loses the caller (docs/PITFALLS.md, section 8). So every capture here happens inside a qsort
// comparator: glibc's qsort stands in for libstdc++'s operator new (both have no frame pointers),
// and UserFrameMarker, which calls qsort, stands in for the allocating function. For each method:
// time per captured stack, `frames` returned, and `reaches_user` (1 if UserFrameMarker's return
// address is among them). Ratios between lines of one run matter; absolute numbers vary with the
// machine.
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <unwind.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "preload/unwinder.h"
#include "preload/wire_format.h"

// The linker defines these for any section whose name is a C identifier. Giving UserFrameMarker
// its own section bounds its code exactly, with no symbol table or exported symbols needed.
extern "C" const char __start_dw_user_frame[];
extern "C" const char __stop_dw_user_frame[];

namespace {

constexpr uint32_t kShimDefaultDepth = 16;  // DRIFTWATCH_DEPTH's default (preload/options.h)
constexpr int kUserLevels = 20;             // a realistic distance from main to the caller
constexpr int kDeepLevels = 80;             // deeper than the deepest capture of the depth sweep

enum class Method { kFramePointer, kShimUnwinder, kLibgcc, kGlibcBacktrace };

struct StackBounds {
  uintptr_t low = 0;
  uintptr_t high = 0;
};

// Everything the comparator needs: qsort passes it no context of its own.
struct Run {
  benchmark::State* state = nullptr;
  Method method = Method::kFramePointer;
  uint32_t depth = 0;
  StackBounds bounds;
  const dw::Unwinder* unwinder = nullptr;
  bool measured = false;
  // False: capture right in UserFrameMarker, on a stack of frame-pointer code only, to show
  // what a frame-pointer walk costs when nothing breaks its chain.
  bool through_qsort = true;
  uintptr_t frames[dw::wire::kMaxDepth] = {};
  uint32_t count = 0;
};

Run* current_run = nullptr;

StackBounds CallingThreadStack() {
  StackBounds bounds;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return bounds;
  void* low = nullptr;
  size_t size = 0;
  if (pthread_attr_getstack(&attr, &low, &size) == 0) {
    bounds.low = reinterpret_cast<uintptr_t>(low);
    bounds.high = bounds.low + size;
  }
  pthread_attr_destroy(&attr);
  return bounds;
}

// A frame-pointer walk must never fault, even when a frame without frame pointers left garbage in
// rbp: every step must move up the stack, by a plausible amount, to an aligned address whose
// frame record lies wholly inside this thread's stack. Anything else ends the walk.
__attribute__((noinline)) uint32_t FramePointerWalk(const StackBounds& bounds, uintptr_t* frames,
                                                    uint32_t max_depth) {
  constexpr uintptr_t kMaxFrameSize = 1 << 20;
  constexpr uintptr_t kRecordSize = 2 * sizeof(uintptr_t);  // saved rbp, return address
  auto fp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  if (fp < bounds.low || fp + kRecordSize > bounds.high) return 0;
  uint32_t depth = 0;
  while (depth < max_depth) {
    const auto* record = reinterpret_cast<const uintptr_t*>(fp);
    if (record[1] == 0) break;
    frames[depth++] = record[1];
    uintptr_t next = record[0];
    if (next <= fp || next - fp >= kMaxFrameSize || next % sizeof(uintptr_t) != 0 ||
        next + kRecordSize > bounds.high) {
      break;
    }
    fp = next;
  }
  return depth;
}

// One entry point for all methods, so each walks the same frames above it. gcc turns some of the
// calls below into tail calls, so a method's first frame is either Capture or MeasureCaptures.
__attribute__((noinline)) uint32_t Capture(const Run& run, uintptr_t* frames) {
  switch (run.method) {
    case Method::kFramePointer:
      return FramePointerWalk(run.bounds, frames, run.depth);
    case Method::kShimUnwinder:
      return run.unwinder->Capture(frames, run.depth);
    case Method::kLibgcc:
      // The shim's own fallback, used when libunwind is missing.
      return static_cast<uint32_t>(
          dw::LibgccBacktrace(reinterpret_cast<void**>(frames), static_cast<int>(run.depth)));
    case Method::kGlibcBacktrace:
      return static_cast<uint32_t>(
          backtrace(reinterpret_cast<void**>(frames), static_cast<int>(run.depth)));
  }
  return 0;
}

// The whole timing loop runs inside the comparator, so the time measured is unwinding alone:
// qsort's own work happens once per benchmark invocation, outside the loop.
__attribute__((noinline)) void MeasureCaptures(Run& run) {
  // Untimed first capture: glibc's backtrace() dlopens libgcc_s on first use, and every method
  // builds its caches; the shim does the same once in Unwinder::Init.
  run.count = Capture(run, run.frames);
  for (auto _ : *run.state) {
    run.count = Capture(run, run.frames);
    benchmark::DoNotOptimize(run.frames);
    benchmark::ClobberMemory();
  }
}

int CompareAndMeasure(const void* left, const void* right) {
  if (current_run != nullptr && !current_run->measured) {
    current_run->measured = true;
    MeasureCaptures(*current_run);
  }
  int a = *static_cast<const int*>(left);
  int b = *static_cast<const int*>(right);
  return (a > b) - (a < b);
}

// The frame an allocation profile must attribute to: it called into a library without frame
// pointers. noclone keeps its code in one piece inside its own section.
__attribute__((noinline, noclone, section("dw_user_frame"))) void UserFrameMarker() {
  if (current_run != nullptr && !current_run->through_qsort) {
    current_run->measured = true;
    MeasureCaptures(*current_run);
    benchmark::ClobberMemory();  // keeps the call from being a tail call
    return;
  }
  int keys[] = {2, 1};
  qsort(keys, 2, sizeof(keys[0]), CompareAndMeasure);
  benchmark::DoNotOptimize(keys);  // also keeps the qsort call from being a tail call
}

__attribute__((noinline, noclone)) int Descend(int levels) {
  if (levels == 0) {
    UserFrameMarker();
    return 0;
  }
  int below = Descend(levels - 1);
  benchmark::DoNotOptimize(below);  // keeps every level a real frame
  return below + 1;
}

bool ReachesUser(const Run& run) {
  auto begin = reinterpret_cast<uintptr_t>(__start_dw_user_frame);
  auto end = reinterpret_cast<uintptr_t>(__stop_dw_user_frame);
  for (uint32_t i = 0; i < run.count; ++i) {
    // A return address follows its call, so it can sit just past the function, never at it.
    if (run.frames[i] > begin && run.frames[i] <= end) return true;
  }
  return false;
}

const dw::Unwinder& ShimUnwinder() {
  static dw::Unwinder* unwinder = [] {
    auto* created = new dw::Unwinder;
    created->Init(0, 0);  // no shim frames to drop here
    return created;
  }();
  return *unwinder;
}

// Names the library that really did the work: libunwind exports weak backtrace and
// _Unwind_Backtrace, so if anything linked it normally, the libgcc lines would measure it instead.
const char* LibraryOf(const void* function) {
  Dl_info info;
  if (dladdr(function, &info) == 0 || info.dli_fname == nullptr) return "?";
  const char* slash = strrchr(info.dli_fname, '/');
  return slash != nullptr ? slash + 1 : info.dli_fname;
}

void RunCaptures(benchmark::State& state, Method method, int levels, bool through_qsort = true) {
  Run run;
  run.state = &state;
  run.through_qsort = through_qsort;
  run.method = method;
  run.depth = static_cast<uint32_t>(state.range(0));
  run.bounds = CallingThreadStack();
  if (method == Method::kShimUnwinder) run.unwinder = &ShimUnwinder();
  if (method == Method::kFramePointer && run.bounds.high == 0) {
    state.SkipWithError("pthread_getattr_np failed: no stack bounds");
    return;
  }
  current_run = &run;
  Descend(levels);
  current_run = nullptr;
  if (!run.measured) {
    state.SkipWithError("qsort never called the comparator");
    return;
  }
  state.counters["frames"] = run.count;
  state.counters["reaches_user"] = ReachesUser(run) ? 1 : 0;
  switch (method) {
    case Method::kFramePointer:
      state.SetLabel(through_qsort ? "bench-local walk, through qsort"
                                   : "bench-local walk, frame-pointer code only");
      break;
    case Method::kShimUnwinder:
      state.SetLabel(run.unwinder->method() == dw::UnwindMethod::kLibunwind
                         ? "dw::Unwinder, libunwind.so.8"
                         : "dw::Unwinder, libgcc fallback");
      break;
    case Method::kLibgcc:
      state.SetLabel(LibraryOf(reinterpret_cast<const void*>(&_Unwind_Backtrace)));
      break;
    case Method::kGlibcBacktrace:
      state.SetLabel(LibraryOf(reinterpret_cast<const void*>(&backtrace)));
      break;
  }
}

void BM_FramePointerWalk(benchmark::State& state) {
  RunCaptures(state, Method::kFramePointer, kUserLevels);
}
BENCHMARK(BM_FramePointerWalk)->Arg(kShimDefaultDepth)->ArgName("depth");

// The same walk with no library in the way: its real cost for a full stack, for comparison.
void BM_FramePointerWalkNoLibraryFrames(benchmark::State& state) {
  RunCaptures(state, Method::kFramePointer, kUserLevels, /*through_qsort=*/false);
}
BENCHMARK(BM_FramePointerWalkNoLibraryFrames)->Arg(kShimDefaultDepth)->ArgName("depth");

// dw::Unwinder allows for as many shim frames as it has seen (none here, as Init(0, 0) drops
// nothing, so its initial two), exactly as it does inside the shim.
void BM_ShimUnwinder(benchmark::State& state) {
  RunCaptures(state, Method::kShimUnwinder, kUserLevels);
}
BENCHMARK(BM_ShimUnwinder)->Arg(kShimDefaultDepth)->ArgName("depth");

void BM_LibgccUnwindBacktrace(benchmark::State& state) {
  RunCaptures(state, Method::kLibgcc, kUserLevels);
}
BENCHMARK(BM_LibgccUnwindBacktrace)->Arg(kShimDefaultDepth)->ArgName("depth");

void BM_GlibcBacktrace(benchmark::State& state) {
  RunCaptures(state, Method::kGlibcBacktrace, kUserLevels);
}
BENCHMARK(BM_GlibcBacktrace)->Arg(kShimDefaultDepth)->ArgName("depth");

// The shipped method against capture depth, from a stack deep enough for every depth, so the
// cost of each extra frame shows.
void BM_ShimUnwinderDepthSweep(benchmark::State& state) {
  RunCaptures(state, Method::kShimUnwinder, kDeepLevels);
}
BENCHMARK(BM_ShimUnwinderDepthSweep)->RangeMultiplier(2)->Range(8, 64)->ArgName("depth");

}  // namespace
