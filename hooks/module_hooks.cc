// module_hooks.cc: dlclose.
//
// A plugin can be loaded, allocate, and be unloaded between two censuses; the census that then
// defines its sites would no longer list the plugin, and they could not be symbolised. So each
// dlclose is numbered, the loaded objects (with their build-ids) and the maps are snapshotted
// before the real dlclose, and the mappings of the objects gone after it are kept for the next
// ModuleLists, with that number (preload/module_map.h). dlopen is not interposed: glibc takes the
// caller's address to choose the namespace and the $ORIGIN search path, which a hook would
// change. No guard is held across the real call: the plugin's destructors run inside it, and
// their frees must be recorded as usual.
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>

#include "hooks/export.h"
#include "hooks/real.h"
#include "preload/events.h"
#include "preload/os.h"
#include "preload/thread_state.h"

DW_EXPORT int dlclose(void* handle) noexcept {
  // Another thread may be resolving the real functions right now (start-up): dlclose must not
  // fail on the shim's account, so wait for it. Resolution never calls dlclose, so this thread
  // is not the resolving one.
  while (!dw::real::EnsureResolved()) sched_yield();
  if (dw::real::dlclose == nullptr) return -1;  // no libc dlclose: nothing could be closed
  dw::UnloadedModules::Snapshot before;
  bool snapshot_taken = false;
  {
    // The target sees errno exactly as dlclose leaves it: the snapshots make system calls.
    dw::os::ErrnoKeeper keep_errno;
    dw::HookScope scope;
    if (scope.entered() && dw::Tracking()) snapshot_taken = dw::OnModulesUnloading(before);
  }
  const int result = dw::real::dlclose(handle);
  if (snapshot_taken) {
    dw::os::ErrnoKeeper keep_errno;
    dw::HookScope scope;
    dw::OnModulesUnloaded(before, result == 0);
  }
  return result;
}
