// Steady: a timer created, armed and deleted per request (signal, thread-id-less and
// no-notification timers).
// Expect: steady.
#include <signal.h>
#include <time.h>

#include "corpus_service.h"

CORPUS_NOINLINE static void time_request(uint64_t request) {
  struct sigevent event = {.sigev_notify = request % 2 ? SIGEV_NONE : SIGEV_SIGNAL,
                           .sigev_signo = SIGUSR1};
  timer_t timer;
  if (timer_create(CLOCK_MONOTONIC, &event, &timer) != 0) return;
  struct itimerspec armed = {.it_value = {10, 0}};
  timer_settime(timer, 0, &armed, NULL);
  timer_delete(timer);
}

int main(void) {
  signal(SIGUSR1, SIG_IGN);
  return corpus_serve(200, time_request);
}
