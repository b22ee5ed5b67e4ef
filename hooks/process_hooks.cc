// process_hooks.cc: calls about the process as a whole.
// - unshare and setns, which the kernel refuses (EINVAL) to a multithreaded process for a user
//   namespace, and setns for a mount namespace too. A program that is single-threaded without
//   the shim must stay able to make them: the census thread steps aside for the call and comes
//   back one interval later (preload/reporter.h).
// - _exit, which runs no exit handler: the final census is sent from here instead (a worker
//   that leaves with os._exit, a daemon's child), bounded like exit's.
#include <errno.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hooks/export.h"
#include "hooks/real.h"
#include "preload/events.h"
#include "preload/os.h"
#include "preload/thread_state.h"

namespace {

// The namespaces and sharing flags for which unshare needs a single-threaded caller.
constexpr int kSingleThreadedUnshare = CLONE_NEWUSER | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM;

// Runs `call` with the census thread out of the way when `needed`.
template <typename Call>
int WithoutCensusThread(bool needed, Call call) {
  bool stepped_aside = false;
  if (needed) {
    dw::HookScope scope;
    stepped_aside = scope.entered() && dw::Tracking() && dw::OnSingleThreadedCallBegin();
  }
  const int result = call();
  if (stepped_aside) {
    dw::os::ErrnoKeeper keep_errno;
    dw::HookScope scope;
    dw::OnSingleThreadedCallEnd();
  }
  return result;
}

}  // namespace

DW_EXPORT int unshare(int flags) noexcept {
  if (!dw::real::EnsureResolved() || dw::real::unshare == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  return WithoutCensusThread((flags & kSingleThreadedUnshare) != 0,
                             [&] { return dw::real::unshare(flags); });
}

DW_EXPORT int setns(int fd, int namespace_type) noexcept {
  if (!dw::real::EnsureResolved() || dw::real::setns == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  // 0 lets the kernel take the type from the descriptor: it may be a user or mount namespace.
  const bool needed = namespace_type == 0 || (namespace_type & (CLONE_NEWUSER | CLONE_NEWNS)) != 0;
  return WithoutCensusThread(needed, [&] { return dw::real::setns(fd, namespace_type); });
}

DW_EXPORT void _exit(int status) {
  {
    dw::HookScope scope;
    if (scope.entered() && dw::Tracking()) dw::OnProcessExiting();
  }
  if (dw::real::EnsureResolved() && dw::real::_exit != nullptr) dw::real::_exit(status);
  dw::os::RawCall(SYS_exit_group, status);
  __builtin_unreachable();
}
