#include "preload/timer_tracker.h"

#include <signal.h>

#include "preload/events.h"
#include "preload/runtime_internal.h"

namespace dw {

uint32_t TimerTracker::NotifyOf(const struct sigevent* event) {
  if (event == nullptr) return wire::kTimerSignal;
  switch (event->sigev_notify) {
    case SIGEV_THREAD:
      return wire::kTimerThread;
    case SIGEV_NONE:
      return wire::kTimerNone;
    case SIGEV_THREAD_ID:
      return wire::kTimerThreadId;
    default:
      return wire::kTimerSignal;
  }
}

void OnTimerCreated(timer_t timer, TimerAbi abi, const struct sigevent* event) {
  g_runtime.timers.handles().Create(TimerTracker::HandleOf(timer, abi), CaptureSite(), 0,
                                    TimerTracker::NotifyOf(event));
}

void OnTimerDeleting(timer_t timer, TimerAbi abi) {
  g_runtime.timers.handles().Release(TimerTracker::HandleOf(timer, abi));
}

}  // namespace dw
