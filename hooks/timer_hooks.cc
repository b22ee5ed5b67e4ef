// timer_hooks.cc: POSIX timers, in every symbol version glibc exports.
//
// glibc 2.36 has timer_create and timer_delete at GLIBC_2.34 (default), GLIBC_2.3.3 (same code)
// and GLIBC_2.2.5 (the old compatibility ABI). Each version gets its own definition, bound to
// that version with .symver and listed in hooks/libdriftwatch.map, and forwards to the same
// version of the real function.
#include <errno.h>
#include <time.h>

#include "hooks/export.h"
#include "hooks/real.h"
#include "preload/events.h"
#include "preload/thread_state.h"

namespace {

using TimerCreate = decltype(&::timer_create);
using TimerDelete = decltype(&::timer_delete);

int CreateTimer(TimerCreate real, dw::TimerAbi abi, clockid_t clock, struct sigevent* event,
                timer_t* timer) {
  if (!dw::real::EnsureResolved() || real == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  dw::HookScope scope;
  int result = real(clock, event, timer);
  if (result == 0 && scope.entered() && dw::Tracking()) dw::OnTimerCreated(*timer, abi, event);
  return result;
}

int DeleteTimer(TimerDelete real, dw::TimerAbi abi, timer_t timer) {
  if (!dw::real::EnsureResolved() || real == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  dw::HookScope scope;
  // Before the real call: the id could otherwise be reused by another thread in between.
  if (dw::Tracking()) dw::OnTimerDeleting(timer, abi);
  return real(timer);
}

}  // namespace

DW_EXPORT int dw_timer_create_2_34(clockid_t clock, struct sigevent* event, timer_t* timer) {
  return CreateTimer(dw::real::timer_create_2_34, dw::TimerAbi::kCurrent, clock, event, timer);
}
DW_EXPORT int dw_timer_create_2_3_3(clockid_t clock, struct sigevent* event, timer_t* timer) {
  return CreateTimer(dw::real::timer_create_2_3_3, dw::TimerAbi::kCurrent, clock, event, timer);
}
DW_EXPORT int dw_timer_create_2_2_5(clockid_t clock, struct sigevent* event, timer_t* timer) {
  return CreateTimer(dw::real::timer_create_2_2_5, dw::TimerAbi::kCompat, clock, event, timer);
}
DW_EXPORT int dw_timer_delete_2_34(timer_t timer) {
  return DeleteTimer(dw::real::timer_delete_2_34, dw::TimerAbi::kCurrent, timer);
}
DW_EXPORT int dw_timer_delete_2_3_3(timer_t timer) {
  return DeleteTimer(dw::real::timer_delete_2_3_3, dw::TimerAbi::kCurrent, timer);
}
DW_EXPORT int dw_timer_delete_2_2_5(timer_t timer) {
  return DeleteTimer(dw::real::timer_delete_2_2_5, dw::TimerAbi::kCompat, timer);
}

__asm__(".symver dw_timer_create_2_34, timer_create@@GLIBC_2.34");
__asm__(".symver dw_timer_create_2_3_3, timer_create@GLIBC_2.3.3");
__asm__(".symver dw_timer_create_2_2_5, timer_create@GLIBC_2.2.5");
__asm__(".symver dw_timer_delete_2_34, timer_delete@@GLIBC_2.34");
__asm__(".symver dw_timer_delete_2_3_3, timer_delete@GLIBC_2.3.3");
__asm__(".symver dw_timer_delete_2_2_5, timer_delete@GLIBC_2.2.5");
