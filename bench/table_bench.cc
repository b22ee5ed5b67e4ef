// Micro-benchmarks of the work the shim adds to every allocation: one insert and one erase in
// the live-resource table, interning a stack, and capturing a stack. Ratios between lines of one
// run are what matter; absolute numbers move with the machine.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "preload/pointer_table.h"
#include "preload/stack_table.h"
#include "preload/unwinder.h"

namespace {

// Insert + erase of a working set of N live blocks (the steady state of a busy allocator).
void BM_PointerTableInsertErase(benchmark::State& state) {
  static dw::PointerTable* table = [] {
    auto* created = new dw::PointerTable;
    created->Init(4096);
    return created;
  }();
  const uintptr_t live = static_cast<uintptr_t>(state.range(0));
  const uintptr_t base = (static_cast<uintptr_t>(state.thread_index()) + 1) << 40;
  for (uintptr_t i = 0; i < live; ++i) table->Insert(base + i * 32, {1, 32});
  uintptr_t next = live;
  for (auto _ : state) {
    dw::PointerTable::Entry erased;
    table->Erase(base + (next - live) * 32, &erased);
    table->Insert(base + next * 32, {1, 32});
    ++next;
  }
  for (uintptr_t i = next - live; i < next; ++i) {
    dw::PointerTable::Entry erased;
    table->Erase(base + i * 32, &erased);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PointerTableInsertErase)->Arg(1000)->Arg(1000000)->Threads(1)->Threads(2);

// Inserts and erases while the table grows, as in defect 13 of issue 9: every thread keeps one
// block live per iteration and inserts and erases a short-lived one beside it, so a run of 30000
// iterations on 16 threads ends with 480k live blocks after about ten growths from 512 slots.
// Three table operations per iteration; items/s counts operations. Each run uses a fresh table,
// left mapped at the end (the bench builds against older tables that cannot unmap themselves).
void BM_PointerTableDuringGrowth(benchmark::State& state) {
  static dw::PointerTable* table = nullptr;
  if (state.thread_index() == 0) {
    table = new dw::PointerTable;
    table->Init(64);
  }
  const uintptr_t base = (static_cast<uintptr_t>(state.thread_index()) + 1) << 40;
  uintptr_t i = 0;
  uint64_t dropped = 0;
  for (auto _ : state) {
    dw::PointerTable::Entry erased;
    if (!table->Insert(base + i * 64, {1, 32})) ++dropped;
    if (!table->Insert(base + i * 64 + 32, {2, 16})) ++dropped;
    table->Erase(base + i * 64 + 32, &erased);
    ++i;
  }
  state.SetItemsProcessed(state.iterations() * 3);
  state.counters["dropped"] = benchmark::Counter(static_cast<double>(dropped));
}
BENCHMARK(BM_PointerTableDuringGrowth)
    ->Iterations(30000)
    ->Threads(2)
    ->Threads(16)
    ->UseRealTime()
    ->Repetitions(5)
    ->ReportAggregatesOnly(true);

// Interning a stack that is already known: the common case on the allocation path.
void BM_StackTableInternKnown(benchmark::State& state) {
  static dw::StackTable* table = [] {
    auto* created = new dw::StackTable;
    created->Init(1 << 18, 16);
    return created;
  }();
  std::vector<uintptr_t> frames(16);
  for (size_t i = 0; i < frames.size(); ++i) frames[i] = 0x400000 + i * 0x40;
  for (auto _ : state) {
    frames[0] = 0x400000 + (state.iterations() % 64) * 8;  // 64 distinct hot sites
    benchmark::DoNotOptimize(table->Intern(frames.data(), 16));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StackTableInternKnown)->Threads(1)->Threads(2);

// The same, but each stack depends on the id interned before it, so calls cannot overlap: the
// latency of one Intern, as the shim pays it between an unwind and the real malloc. `stacks`
// distinct stacks take turns: 64 stay in the first-level cache, 16384 (3.4 MiB of records and
// index lines) do not, as in a program with many hot allocation sites.
void BM_StackTableInternLatency(benchmark::State& state) {
  static dw::StackTable* table = [] {
    auto* created = new dw::StackTable;
    created->Init(1 << 18, 16);
    return created;
  }();
  const auto stacks = static_cast<uint32_t>(state.range(0));
  std::vector<uintptr_t> frames(16);
  for (size_t i = 0; i < frames.size(); ++i) frames[i] = 0x400000 + i * 0x40;
  uint32_t id = 0;
  uint32_t turn = 0;
  for (auto _ : state) {
    turn = (turn + 1 + id % 2) % stacks;  // the next stack waits for this id
    frames[0] = 0x400000 + (turn % 128) * 8;
    frames[1] = 0x500000 + (turn / 128) * 8;
    id = table->Intern(frames.data(), 16);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StackTableInternLatency)->Arg(64)->Arg(16384);

// A call chain `levels` deep, so the unwinders have real frames to walk.
__attribute__((noinline)) uint32_t CaptureAtDepth(const dw::Unwinder& unwinder, int levels,
                                                  uintptr_t* frames, uint32_t depth) {
  if (levels > 0) {
    uint32_t got = CaptureAtDepth(unwinder, levels - 1, frames, depth);
    benchmark::DoNotOptimize(got);
    return got;
  }
  return unwinder.Capture(frames, depth);
}

// Stack capture at depth 16 from 24 frames down, as the shim does per allocation.
void BM_CaptureStack(benchmark::State& state) {
  static dw::Unwinder* unwinder = [] {
    auto* created = new dw::Unwinder;
    created->Init(0, 0);  // no shim frames to drop here
    return created;
  }();
  uintptr_t frames[16];
  uint32_t got = 0;
  for (auto _ : state) got = CaptureAtDepth(*unwinder, 24, frames, 16);
  state.counters["frames"] = got;
  state.SetLabel(unwinder->method() == dw::UnwindMethod::kLibunwind ? "libunwind" : "libgcc");
}
BENCHMARK(BM_CaptureStack);

}  // namespace
