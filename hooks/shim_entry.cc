// shim_entry.cc: the shim's start-up, run by the dynamic loader when libdriftwatch.so loads.
#include <link.h>

#include <cstdint>

#include "hooks/real.h"
#include "preload/events.h"
#include "preload/thread_state.h"

namespace {

struct CodeRange {
  uintptr_t probe;
  uintptr_t begin;
  uintptr_t end;
};

// Finds the executable segment of the module that contains `probe` (this library).
int FindOwnCode(struct dl_phdr_info* info, size_t, void* argument) {
  auto* range = static_cast<CodeRange*>(argument);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
    if (segment.p_type != PT_LOAD || (segment.p_flags & PF_X) == 0) continue;
    uintptr_t begin = info->dlpi_addr + segment.p_vaddr;
    uintptr_t end = begin + segment.p_memsz;
    if (range->probe >= begin && range->probe < end) {
      range->begin = begin;
      range->end = end;
      return 1;
    }
  }
  return 0;
}

// Priority 101: before any other constructor of ours, so tracking is on as early as possible.
__attribute__((constructor(101))) void StartShim() {
  dw::HookScope scope;  // nothing the start-up does is recorded
  if (!dw::real::EnsureResolved() || !dw::real::AllRequiredFound()) return;
  CodeRange range{reinterpret_cast<uintptr_t>(&StartShim), 0, 0};
  dl_iterate_phdr(FindOwnCode, &range);
  dw::InitRuntime(range.begin, range.end);
}

}  // namespace
