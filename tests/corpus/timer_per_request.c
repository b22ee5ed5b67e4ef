// Leak: POSIX timers created per request and never deleted. A request-timeout timer is armed
// per request; the completion path disarms it with timer_settime(0) instead of deleting it.
// Expect: drift, timers, arm_timeout.
#include <signal.h>
#include <time.h>

#include "corpus_service.h"

CORPUS_NOINLINE static void arm_timeout(void) {
  struct sigevent event = {.sigev_notify = SIGEV_NONE};
  timer_t timer;
  if (timer_create(CLOCK_MONOTONIC, &event, &timer) != 0) return;
  struct itimerspec armed = {.it_value = {30, 0}};
  timer_settime(timer, 0, &armed, NULL);
  struct itimerspec disarmed = {{0, 0}, {0, 0}};
  timer_settime(timer, 0, &disarmed, NULL);  // "done": disarmed, but never timer_delete'd
}

static void handle(uint64_t request) {
  (void)request;
  arm_timeout();
}

int main(void) { return corpus_serve(50, handle); }
