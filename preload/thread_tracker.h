// thread_tracker.h: the tracker for threads, and the events the thread hooks report.
//
// A thread is live from its creation until it has both exited and been joined or detached: a
// joinable thread that returned but was never joined still holds its stack.
//
// Thread-safety: lock-free; the On* functions may run concurrently on any thread.
// Allocation: none. Safe inside a hook: the On* functions, yes.
#pragma once

#include <cstdint>

#include "preload/handle_tracker.h"

namespace dw {

class ThreadTracker {
 public:
  bool Init(uint32_t max_sites) { return handles_.Init(max_sites, 64); }
  HandleTracker& handles() { return handles_; }
  const HandleTracker& handles() const { return handles_; }

 private:
  HandleTracker handles_;
};

class RecordWriter;

// Census-thread reconciliation with /proc/self/task (a CensusSources reconciler).
void ReconcileThreads();
// Appends the ThreadStates record (a CensusSources record writer).
bool WriteThreadStates(RecordWriter& writer);

}  // namespace dw
