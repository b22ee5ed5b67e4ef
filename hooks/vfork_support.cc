// vfork_support.cc: the C side of hooks/vfork_hook.S.
#include <errno.h>

#include <cstddef>

#include "preload/thread_state.h"

static_assert(offsetof(dw::ThreadState, in_vfork) == 2, "keep IN_VFORK_OFFSET in vfork_hook.S");

// Tail-called by the vfork hook when the system call fails: returns -1 with errno set, as
// vfork does.
extern "C" __attribute__((visibility("hidden"))) int dw_vfork_failed(int error) {
  errno = error;
  return -1;
}
