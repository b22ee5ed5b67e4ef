// fd_tracker.h: the tracker for file descriptors, and the events the fd hooks report.
//
// Every open descriptor the shim saw created is kept with its site and type (a FdType bit of
// wire_format.h). Descriptors created where no hook can see them (raw syscalls, inherited
// across exec, made inside libc) are found by reconciling with /proc/self/fd on the census
// thread and counted at the unattributed site, so none is ever lost.
//
// Thread-safety: lock-free; the On* functions may run concurrently on any thread, and in signal
// handlers (the calls they follow are async-signal-safe). Allocation: none. Safe inside a hook:
// the On* functions, yes; Reconcile(), no (census thread only).
#pragma once

#include <cstdint>

#include "preload/handle_tracker.h"

namespace dw {

class FdTracker {
 public:
  bool Init(uint32_t max_sites) { return handles_.Init(max_sites, 256); }
  HandleTracker& handles() { return handles_; }
  const HandleTracker& handles() const { return handles_; }

 private:
  HandleTracker handles_;
};

// Census-thread reconciliation with /proc/self/fd (a CensusSources reconciler).
void ReconcileFds();

}  // namespace dw
