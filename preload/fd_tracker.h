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

// ---- Classification (wire::FdType bits) ----

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

// ---- Hook events ----
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

// ---- Census ----

// Census-thread reconciliation with /proc/self/fd (a CensusSources reconciler): descriptors the
// table holds but the process no longer has are released; open descriptors the table lacks are
// recorded at the unattributed site with their type.
void ReconcileFds();

}  // namespace dw
