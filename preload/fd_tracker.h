// fd_tracker.h: the tracker for file descriptors, and the events the fd hooks report.
//
// Every open descriptor the shim saw created is kept with its site and type (a wire::FdType bit,
// stored as the handle's state; the site's detail ORs the types it made). Descriptors created
// where no hook can see them (raw syscalls, inherited across exec, made inside libc) are found by
// reconciling with /proc/self/fd on the census thread and counted at the unattributed site;
// descriptors closed where no hook can see them are released there too, so none is ever lost.
//
// Thread-safety: lock-free; the On* functions and the classifiers may run concurrently on any
// thread, and in signal handlers (the calls they follow are async-signal-safe). Allocation: none;
// extra work is done with raw system calls (fstat, getsockopt, readlink, fcntl), never through
// libc wrappers the shim interposes, and none of these functions changes errno. Safe inside a hook:
// the On* functions and the classifiers, yes (the On*Created functions capture a stack, so with the
// hook guard held); ReconcileFds(), no (census thread only).
#pragma once

#include <cstdint>

#include "preload/handle_tracker.h"

struct msghdr;

namespace dw {

class FdTracker {
 public:
  bool Init(uint32_t max_sites) { return handles_.Init(max_sites, 256); }
  HandleTracker& handles() { return handles_; }
  const HandleTracker& handles() const { return handles_; }

 private:
  HandleTracker handles_;
};

// ---- Census ----

// Census-thread reconciliation with /proc/self/fd (a CensusSources reconciler): descriptors the
// table holds but the process no longer has are released; open descriptors the table lacks are
// recorded at the unattributed site with their type.
void ReconcileFds();

}  // namespace dw
