// process_hooks.cc: calls about the process as a whole.
// - unshare and setns, which the kernel refuses (EINVAL) to a multithreaded process for a user
//   namespace, and setns for a mount namespace too. A program that is single-threaded without
//   the shim must stay able to make them: the census thread steps aside for the call and comes
//   back one interval later (preload/reporter.h).
// - capset, and the prctl options that change the calling thread's capabilities or what a later
//   change of user does to them. They act on one thread, while glibc applies setuid, setgid and
//   the rest to every thread and aborts the process unless all succeed alike: a census thread
//   whose capabilities stayed behind fails the next setresgid (util-linux's setpriv keeps its
//   capabilities across the change of user, restores them with capset, then changes the group).
//   The census thread steps aside for these calls too; it comes back as a new thread, with the
//   credentials of the program's thread that starts it.
// - _exit, which runs no exit handler: the final census is sent from here instead (a worker
//   that leaves with os._exit, a daemon's child), bounded like exit's.
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/prctl.h>
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

// The prctl options that change the calling thread's capabilities, or keep them across a change
// of user.
bool ChangesThreadCapabilities(int option, unsigned long argument) {
  switch (option) {
    case PR_SET_KEEPCAPS:
    case PR_SET_SECUREBITS:
    case PR_CAPBSET_DROP:
      return true;
    case PR_CAP_AMBIENT:
      return argument != PR_CAP_AMBIENT_IS_SET;
    default:
      return false;
  }
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

DW_EXPORT int capset(cap_user_header_t header, const cap_user_data_t data) noexcept {
  if (!dw::real::EnsureResolved() || dw::real::capset == nullptr) {
    return static_cast<int>(
        dw::os::RawCall(SYS_capset, reinterpret_cast<long>(header), reinterpret_cast<long>(data)));
  }
  return WithoutCensusThread(true, [&] { return dw::real::capset(header, data); });
}

DW_EXPORT int prctl(int option, ...) noexcept {
  // prctl takes up to four more arguments, as unsigned longs; glibc's own wrapper reads all four.
  va_list list;
  va_start(list, option);
  const unsigned long a2 = va_arg(list, unsigned long);
  const unsigned long a3 = va_arg(list, unsigned long);
  const unsigned long a4 = va_arg(list, unsigned long);
  const unsigned long a5 = va_arg(list, unsigned long);
  va_end(list);
  if (!dw::real::EnsureResolved() || dw::real::prctl == nullptr) {
    return static_cast<int>(dw::os::RawCall(SYS_prctl, option, static_cast<long>(a2),
                                            static_cast<long>(a3), static_cast<long>(a4),
                                            static_cast<long>(a5)));
  }
  return WithoutCensusThread(ChangesThreadCapabilities(option, a2),
                             [&] { return dw::real::prctl(option, a2, a3, a4, a5); });
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
