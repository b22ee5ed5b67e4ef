// thread_hooks.cc: thread creation, detach and join.
//
// pthread_create starts the thread through dw::ThreadTrampoline, with a start slot from the
// shim's own pool (never the target's heap); attributes, stack and signal mask are passed
// untouched. Detach is recorded before the real call and joins after a successful one: in both
// cases at a moment when the pthread_t still names the thread in question (glibc reuses it for
// the next thread once the old one is joined or has exited detached). No guard is held across
// a real call: pthread_create allocates the new thread's TLS through the malloc hooks, as it
// does without the shim, and joins block and are cancellation points (a forced unwind through
// this frame runs no destructor of ours).
#include <errno.h>
#include <pthread.h>

#include "hooks/export.h"
#include "hooks/real.h"
#include "preload/events.h"
#include "preload/thread_state.h"

namespace {

// A join variant: `call` performs the real join; the entry is released once it succeeded.
template <typename Call>
int Join(pthread_t thread, Call call) {
  uint64_t target = 0;
  {
    // A lookup only: safe even when re-entered, and needed then too (see below).
    dw::HookScope scope;
    if (dw::Tracking()) target = dw::OnThreadJoining(thread);
  }
  int error = call();
  if (error == 0 && target != 0) {
    // Recorded even when re-entered (the guard is only against recursion): a missed release
    // would show a joined thread as leaked forever.
    dw::HookScope scope;
    dw::OnThreadJoined(thread, target);
  }
  return error;
}

}  // namespace

DW_EXPORT int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*routine)(void*),
                             void* arg) noexcept {
  // Only reachable unresolved from dlsym itself or a raced first call: a transient failure.
  if (!dw::real::EnsureResolved()) return EAGAIN;
  dw::ThreadStartPool::Slot* slot = nullptr;
  {
    dw::HookScope scope;
    if (scope.entered() && dw::Tracking()) slot = dw::OnThreadCreating(routine, arg, attr);
  }
  if (slot == nullptr) return dw::real::pthread_create(thread, attr, routine, arg);
  int error = dw::real::pthread_create(thread, attr, dw::ThreadTrampoline, slot);
  dw::HookScope scope;
  dw::OnThreadCreated(slot, error, error == 0 ? *thread : pthread_t{});
  return error;
}

DW_EXPORT int pthread_detach(pthread_t thread) noexcept {
  if (!dw::real::EnsureResolved()) return ESRCH;
  {
    dw::HookScope scope;
    if (dw::Tracking()) dw::OnThreadDetaching(thread);
  }
  return dw::real::pthread_detach(thread);
}

DW_EXPORT int pthread_join(pthread_t thread, void** result) {
  if (!dw::real::EnsureResolved()) return ESRCH;
  return Join(thread, [&] { return dw::real::pthread_join(thread, result); });
}

DW_EXPORT int pthread_tryjoin_np(pthread_t thread, void** result) noexcept {
  if (!dw::real::EnsureResolved() || dw::real::pthread_tryjoin_np == nullptr) return ENOSYS;
  return Join(thread, [&] { return dw::real::pthread_tryjoin_np(thread, result); });
}

DW_EXPORT int pthread_timedjoin_np(pthread_t thread, void** result,
                                   const struct timespec* abstime) {
  if (!dw::real::EnsureResolved() || dw::real::pthread_timedjoin_np == nullptr) return ENOSYS;
  return Join(thread, [&] { return dw::real::pthread_timedjoin_np(thread, result, abstime); });
}

DW_EXPORT int pthread_clockjoin_np(pthread_t thread, void** result, clockid_t clock,
                                   const struct timespec* abstime) {
  if (!dw::real::EnsureResolved() || dw::real::pthread_clockjoin_np == nullptr) return ENOSYS;
  return Join(thread,
              [&] { return dw::real::pthread_clockjoin_np(thread, result, clock, abstime); });
}
